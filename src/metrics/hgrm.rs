//! Latency histograms on disk. `.hgrm`: HdrHistogram's percentile distribution as text,
//! values in ms, for people and the usual HdrHistogram plotters. `.hlog`: the histograms
//! themselves, lossless (HdrHistogram's interval log, V2 deflate encoding, one interval per
//! window), from which a report is redrawn exactly and repeats or shards are added, never
//! averaged.

use std::fmt::Write;
use std::time::{Duration, SystemTime};

use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry, Tag,
};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

/// One window's histogram for the interval log: when it started, how long it lasted.
pub struct Interval<'a> {
    pub start: SystemTime,
    pub length: Duration,
    pub histogram: &'a Histogram<u64>,
}

/// An interval log of `intervals` (µs values), each tagged `tag`.
pub fn to_hlog(intervals: &[Interval<'_>], tag: &str) -> anyhow::Result<String> {
    let base = intervals
        .iter()
        .map(|i| i.start)
        .min()
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut out = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    {
        let mut builder = IntervalLogWriterBuilder::new();
        builder
            .add_comment("pollpush latency histograms, values in microseconds")
            .with_base_time(base)
            .with_start_time(base);
        let mut log = builder.begin_log_with(&mut out, &mut serializer)?;
        for i in intervals {
            let offset = i.start.duration_since(base).unwrap_or_default();
            log.write_histogram(i.histogram, offset, i.length, Tag::new(tag))
                .map_err(|e| anyhow::anyhow!("cannot write the histogram log: {e:?}"))?;
        }
    }
    Ok(String::from_utf8(out)?)
}

/// Every interval of an interval log, added up: the exact histogram of all its windows.
pub fn from_hlog(text: &str) -> anyhow::Result<Histogram<u64>> {
    let mut total = crate::metrics::latency_histogram();
    for (_, _, h) in intervals(text)? {
        total
            .add(&h)
            .map_err(|e| anyhow::anyhow!("an interval does not fit: {e:?}"))?;
    }
    Ok(total)
}

/// Each interval of an interval log: when it started (BaseTime plus its offset), how long
/// it lasted, and its histogram.
pub fn intervals(text: &str) -> anyhow::Result<Vec<(SystemTime, Duration, Histogram<u64>)>> {
    use base64::Engine;
    let mut base = Duration::ZERO;
    let mut out = Vec::new();
    for entry in IntervalLogIterator::new(text.as_bytes()) {
        let entry = entry.map_err(|e| anyhow::anyhow!("not an interval log: {e:?}"))?;
        let interval = match entry {
            LogEntry::BaseTime(t) => {
                base = t;
                continue;
            }
            LogEntry::StartTime(_) => continue,
            LogEntry::Interval(interval) => interval,
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(interval.encoded_histogram())
            .map_err(|e| anyhow::anyhow!("an interval is not base64: {e}"))?;
        let h: Histogram<u64> = Deserializer::new()
            .deserialize(&mut std::io::Cursor::new(bytes))
            .map_err(|e| anyhow::anyhow!("an interval is not a histogram: {e:?}"))?;
        let start = SystemTime::UNIX_EPOCH + base + interval.start_timestamp();
        out.push((start, interval.duration(), h));
    }
    Ok(out)
}

/// A histogram as one string in JSON (`#[serde(with = "base64_v2")]`): HdrHistogram's V2
/// deflate encoding in base64, as in an interval log; lossless.
pub mod base64_v2 {
    use base64::Engine;
    use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
    use hdrhistogram::Histogram;
    use serde::de::Error as _;
    use serde::ser::Error as _;

    pub fn serialize<S: serde::Serializer>(h: &Histogram<u64>, s: S) -> Result<S::Ok, S::Error> {
        let mut bytes = Vec::new();
        V2DeflateSerializer::new()
            .serialize(h, &mut bytes)
            .map_err(|e| S::Error::custom(format!("cannot encode a histogram: {e:?}")))?;
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Histogram<u64>, D::Error> {
        let text: String = serde::Deserialize::deserialize(d)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| D::Error::custom(format!("a histogram is not base64: {e}")))?;
        let h: Histogram<u64> = Deserializer::new()
            .deserialize(&mut std::io::Cursor::new(bytes))
            .map_err(|e| D::Error::custom(format!("not a histogram: {e:?}")))?;
        // Read back with the bounds every latency histogram has, so that they add up.
        let mut out = crate::metrics::latency_histogram();
        out.add(&h)
            .map_err(|e| D::Error::custom(format!("a histogram out of range: {e:?}")))?;
        Ok(out)
    }
}

/// Reads the (value ms, quantile) rows back from a rendered distribution.
pub fn parse(text: &str) -> Vec<(f64, f64)> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let mut cols = l.split_whitespace();
            let value = cols.next()?.parse::<f64>().ok()?;
            let q = cols.next()?.parse::<f64>().ok()?;
            Some((value, q))
        })
        .collect()
}

/// Renders a µs histogram as a percentile distribution in ms, 5 ticks per half distance.
pub fn render(h: &Histogram<u64>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    if h.is_empty() {
        let _ = writeln!(
            out,
            "#[Mean    = {:>12.3}, StdDeviation   = {:>12.3}]",
            0.0, 0.0
        );
        let _ = writeln!(
            out,
            "#[Max     = {:>12.3}, Total count    = {:>12}]",
            0.0, 0
        );
        return out;
    }
    let mut total = 0u64;
    for v in h.iter_quantiles(5) {
        total += v.count_since_last_iteration();
        let q = v.quantile_iterated_to();
        let value_ms = v.value_iterated_to() as f64 / 1000.0;
        if q < 1.0 {
            let _ = writeln!(
                out,
                "{value_ms:>12.3} {q:>14.12} {total:>10} {:>14.2}",
                1.0 / (1.0 - q)
            );
        } else {
            let _ = writeln!(out, "{value_ms:>12.3} {q:>14.12} {total:>10}");
        }
    }
    let _ = writeln!(
        out,
        "#[Mean    = {:>12.3}, StdDeviation   = {:>12.3}]",
        h.mean() / 1000.0,
        h.stdev() / 1000.0
    );
    let _ = writeln!(
        out,
        "#[Max     = {:>12.3}, Total count    = {:>12}]",
        h.max() as f64 / 1000.0,
        h.len()
    );
    let _ = writeln!(
        out,
        "#[Buckets = {:>12}, SubBuckets     = {:>12}]",
        h.buckets(),
        sub_buckets(h)
    );
    out
}

/// Sub-buckets per bucket, as HdrHistogram's footer reports it: the power of two that
/// holds 2 × 10^significant-figures (2,048 for 3 figures).
fn sub_buckets(h: &Histogram<u64>) -> u64 {
    (2.0 * 10f64.powi(i32::from(h.sigfig())))
        .log2()
        .ceil()
        .exp2() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interval_log_gives_back_the_very_histograms_added_up() {
        let (mut a, mut b) = (
            crate::metrics::latency_histogram(),
            crate::metrics::latency_histogram(),
        );
        for v in 1..=5_000u64 {
            a.record(v * 997).unwrap();
            b.record(v * 13 + 7).unwrap();
        }
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let text = to_hlog(
            &[
                Interval {
                    start: t0,
                    length: Duration::from_secs(30),
                    histogram: &a,
                },
                Interval {
                    start: t0 + Duration::from_secs(60),
                    length: Duration::from_secs(30),
                    histogram: &b,
                },
            ],
            "poll",
        )
        .unwrap();
        let mut both = a.clone();
        both.add(&b).unwrap();
        let back = from_hlog(&text).unwrap();
        assert_eq!(back, both);
        // Each interval comes back whole, at its own time.
        let each = intervals(&text).unwrap();
        assert_eq!(each.len(), 2);
        assert_eq!(
            (each[0].0, each[0].1, &each[0].2),
            (t0, Duration::from_secs(30), &a)
        );
        assert_eq!(each[1].0, t0 + Duration::from_secs(60));
        assert_eq!(each[1].2, b);
        assert!(from_hlog("not a log\n1,2,3,zzz").is_err());
    }

    #[test]
    fn the_footer_counts_sub_buckets_as_hdrhistogram_does() {
        let mut h = crate::metrics::latency_histogram();
        h.record(1234).unwrap();
        assert_eq!(sub_buckets(&h), 2048);
        assert!(
            render(&h).contains("SubBuckets     =         2048"),
            "{}",
            render(&h)
        );
    }

    #[test]
    fn renders_percentiles_in_ms_ending_at_the_max() {
        let mut h = crate::metrics::latency_histogram();
        for v in 1..=1000u64 {
            h.record(v * 1000).unwrap();
        }
        let text = render(&h);
        let rows: Vec<&str> = text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .skip(1)
            .collect();
        let last: Vec<&str> = rows.last().unwrap().split_whitespace().collect();
        assert_eq!(last[1], "1.000000000000");
        assert_eq!(last[2], "1000");
        assert!((last[0].parse::<f64>().unwrap() - 1000.0).abs() < 1.0);
        assert!(text.contains("Total count    =         1000"));
    }
}
