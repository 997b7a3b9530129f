//! A swarm shard's clock against the servers': before a shard on another host starts, it
//! asks a server's `GET /clock` several times and keeps the exchange with the shortest
//! round trip (the least queueing, as NTP's clock filter does): the server's time minus the
//! midpoint of the exchange is the offset, half the round trip bounds its error.
//!
//! Latency never crosses clocks in pollpush (each shard stamps its own users' events and
//! reads them back), so the offset serves the shards' common start (`--start-at` is read
//! on the servers' clock) and the window gaps `merge` reports.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::result::ClockOffset;

/// Exchanges per measurement.
pub const EXCHANGES: u32 = 16;

/// One exchange: (the local clock before, the server's answer, the local clock after), µs.
type Exchange = (u64, u64, u64);

/// The offset from the exchanges: the one with the shortest round trip wins.
pub fn estimate(reference: &str, exchanges: &[Exchange]) -> Option<ClockOffset> {
    let &(t0, server, t1) = exchanges.iter().min_by_key(|(t0, _, t1)| t1 - t0)?;
    let midpoint = (t0 + t1) / 2;
    Some(ClockOffset {
        reference: reference.to_string(),
        offset_us: server as i64 - midpoint as i64,
        uncertainty_us: (t1 - t0).div_ceil(2),
        samples: exchanges.len() as u32,
    })
}

/// Measures this host's clock against the server at `addr` (`GET /clock` over one
/// keep-alive connection). An error when the server has no /clock (a system pollpush did
/// not build) or does not answer.
pub async fn measure(addr: SocketAddr) -> anyhow::Result<ClockOffset> {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let url = format!("http://{addr}/clock");
    let mut exchanges = Vec::new();
    for _ in 0..EXCHANGES {
        let t0 = crate::now_us();
        let ask = client.request(hyper::Request::get(&url).body(Empty::new())?);
        let resp = tokio::time::timeout(Duration::from_secs(2), ask)
            .await
            .map_err(|_| anyhow::anyhow!("GET {url}: no answer within 2 s"))??;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        let t1 = crate::now_us();
        anyhow::ensure!(status.is_success(), "GET {url} answered {status}");
        let v: serde_json::Value = serde_json::from_slice(&body)?;
        let server = v["unix_us"]
            .as_u64()
            .ok_or_else(|| anyhow::anyhow!("GET {url}: no unix_us in {v}"))?;
        exchanges.push((t0, server, t1));
    }
    estimate(&addr.to_string(), &exchanges).ok_or_else(|| anyhow::anyhow!("no exchange"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shortest_round_trip_gives_the_offset_and_its_bound() {
        // A server 5 ms ahead; the second exchange waited 40 ms in a queue on its way back.
        let ex = [
            (1_000, 6_100, 1_200),
            (2_000, 7_050, 2_040_000),
            (3_000, 8_060, 3_100),
        ];
        let c = estimate("s", &ex).unwrap();
        assert_eq!(c.offset_us, 8_060 - 3_050);
        assert_eq!(c.uncertainty_us, 50);
        assert_eq!(c.samples, 3);
        // A shard ahead of the server has a negative offset.
        let c = estimate("s", &[(10_000, 4_000, 10_010)]).unwrap();
        assert_eq!(c.offset_us, -6_005);
        assert!(estimate("s", &[]).is_none());
    }
}
