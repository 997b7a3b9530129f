//! Least squares with non-negative coefficients, for costs that are a fixed part plus a
//! price per unit of work. A unit the runs cannot tell apart from the others (it was the
//! same in every run, or moved in step with another unit) is left out and named, never
//! given a made-up price.

/// One fitted cost: `cost = intercept + Σ coef_i · unit_i`.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    /// The fixed part (0 when the cost has none by construction, e.g. bytes).
    pub intercept: f64,
    /// The price of each unit kept, by the unit's index in the caller's list.
    pub coefs: Vec<(usize, f64)>,
    /// Units left out, with the reason.
    pub dropped: Vec<(usize, &'static str)>,
    /// Root mean square of the residuals, relative to the mean cost (0 for a perfect fit).
    pub rel_rmse: f64,
}

impl Fit {
    pub fn predict(&self, units: &[f64]) -> f64 {
        self.intercept + self.coefs.iter().map(|(i, c)| c * units[*i]).sum::<f64>()
    }

    /// The price of unit `i`, if it was kept.
    pub fn coef(&self, i: usize) -> Option<f64> {
        self.coefs.iter().find(|(j, _)| *j == i).map(|(_, c)| *c)
    }
}

/// The spread (largest minus smallest, relative to the mean) under which a unit is taken
/// as the same in every run. A calibration that means to move a unit moves it 2x or more.
pub const STEADY: f64 = 0.25;

pub const CONSTANT: &str = "the same in every calibration run";
pub const COLLINEAR: &str = "moved in step with another unit in every calibration run";
pub const NEGATIVE: &str = "its fitted price was negative (noise): left out";

/// Fits `y ≈ b0 + Σ b_i x_i` (b0 only when `intercept`) with every b >= 0. `x[k]` holds
/// the units of observation k. Needs at least as many observations as parameters kept;
/// returns None when there is no observation at all.
///
/// Each observation weighs by its size (weights ∝ y): the fit is for projecting to large
/// loads, and at small ones per-wake-up costs make a unit of work dearer than it is at
/// scale. Measured in scenarios/model.toml: the poll API spent 140 µs of CPU per extra
/// poll between 200 and 500 polls/s, 100 µs between 500 and 1,000 and 85 µs between
/// 1,000 and 2,000; unweighted, a fit on the smaller runs over-predicted the largest
/// run's CPU by 17 %. Exact data fits exactly either way.
pub fn fit(x: &[Vec<f64>], y: &[f64], intercept: bool) -> Option<Fit> {
    let n = y.len();
    if n == 0 {
        return None;
    }
    let units = x.first().map_or(0, Vec::len);
    let mut dropped: Vec<(usize, &'static str)> = Vec::new();
    let mut kept: Vec<usize> = Vec::new();
    for i in 0..units {
        let col: Vec<f64> = x.iter().map(|r| r[i]).collect();
        let mean = col.iter().sum::<f64>() / n as f64;
        let (lo, hi) = col
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(*v), b.max(*v)));
        // With an intercept, a unit that never moved is the intercept: a rate that a run
        // measures rather than sets (20 events/s drawn at random: 19.6 to 21.9 in one
        // sweep) moves by its noise, so less than [`STEADY`] of its mean is not moving.
        // Without one, a unit that is zero everywhere has no price to find.
        let constant = if intercept {
            hi - lo <= STEADY * mean.abs().max(1e-12)
        } else {
            col.iter().all(|v| v.abs() < 1e-12)
        };
        if constant {
            dropped.push((i, CONSTANT));
        } else {
            kept.push(i);
        }
    }
    loop {
        // More parameters than observations: the last units go first.
        while kept.len() + usize::from(intercept) > n {
            let i = kept.pop().expect("kept is not empty");
            dropped.push((i, COLLINEAR));
        }
        match solve(x, y, &kept, intercept) {
            Solved::Singular(pos) => {
                let i = kept.remove(pos);
                dropped.push((i, COLLINEAR));
            }
            Solved::Ok(b) => {
                let (b0, rest) = if intercept {
                    (b[0], &b[1..])
                } else {
                    (0.0, &b[..])
                };
                // The most negative price goes, and the rest is fitted again.
                let worst = rest
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| **v < 0.0)
                    .min_by(|a, b| a.1.total_cmp(b.1));
                if let Some((pos, _)) = worst {
                    let i = kept.remove(pos);
                    dropped.push((i, NEGATIVE));
                    continue;
                }
                let coefs: Vec<(usize, f64)> =
                    kept.iter().copied().zip(rest.iter().copied()).collect();
                let mut f = Fit {
                    intercept: b0.max(0.0),
                    coefs,
                    dropped,
                    rel_rmse: 0.0,
                };
                let mean = y.iter().sum::<f64>() / n as f64;
                let sse: f64 = x
                    .iter()
                    .zip(y)
                    .map(|(r, v)| (f.predict(r) - v).powi(2))
                    .sum();
                f.rel_rmse = if mean.abs() > 0.0 {
                    (sse / n as f64).sqrt() / mean.abs()
                } else {
                    0.0
                };
                f.dropped.sort_by_key(|(i, _)| *i);
                return Some(f);
            }
        }
    }
}

enum Solved {
    Ok(Vec<f64>),
    /// The position in `kept` of a unit that adds nothing the others do not.
    Singular(usize),
}

/// Solves the normal equations of the columns in `kept` (and a column of ones first when
/// `intercept`), each column scaled to unit size so that a pivot's smallness means the same
/// for bytes as for cores.
fn solve(x: &[Vec<f64>], y: &[f64], kept: &[usize], intercept: bool) -> Solved {
    let mean = y.iter().map(|v| v.abs()).sum::<f64>() / y.len().max(1) as f64;
    // Rows scaled by √w solve the weighted problem; a zero cost keeps a small weight.
    let root_w: Vec<f64> = y
        .iter()
        .map(|v| v.abs().max(1e-3 * mean).max(1e-300).sqrt())
        .collect();
    let y: Vec<f64> = y.iter().zip(&root_w).map(|(v, w)| v * w).collect();
    let y = &y[..];
    let cols: Vec<Vec<f64>> = intercept
        .then(|| root_w.clone())
        .into_iter()
        .chain(
            kept.iter()
                .map(|i| x.iter().zip(&root_w).map(|(r, w)| r[*i] * w).collect()),
        )
        .collect();
    let p = cols.len();
    if p == 0 {
        return Solved::Ok(Vec::new());
    }
    let scale: Vec<f64> = cols
        .iter()
        .map(|c| c.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-300))
        .collect();
    let mut a = vec![vec![0.0; p + 1]; p];
    for r in 0..p {
        for c in 0..p {
            a[r][c] = cols[r]
                .iter()
                .zip(&cols[c])
                .map(|(u, v)| u * v)
                .sum::<f64>()
                / (scale[r] * scale[c]);
        }
        a[r][p] = cols[r].iter().zip(y).map(|(u, v)| u * v).sum::<f64>() / scale[r];
    }
    // Gaussian elimination without reordering the columns, so that a tiny pivot names the
    // column that the earlier ones already explain.
    for k in 0..p {
        let piv = (k..p)
            .max_by(|i, j| a[*i][k].abs().total_cmp(&a[*j][k].abs()))
            .expect("k < p");
        if a[piv][k].abs() < 1e-9 {
            let col = k - usize::from(intercept);
            return Solved::Singular(col.min(kept.len().saturating_sub(1)));
        }
        a.swap(k, piv);
        let pivot_row = a[k].clone();
        for (r, row) in a.iter_mut().enumerate() {
            if r != k {
                let f = row[k] / pivot_row[k];
                for (x, y) in row.iter_mut().zip(&pivot_row).skip(k) {
                    *x -= f * y;
                }
            }
        }
    }
    Solved::Ok((0..p).map(|k| a[k][p] / a[k][k] / scale[k]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
    }

    #[test]
    fn exact_line_and_plane() {
        // y = 2 + 3 a + 5 b, a and b moving apart.
        let x = vec![
            vec![1.0, 0.0],
            vec![2.0, 1.0],
            vec![4.0, 1.0],
            vec![1.0, 3.0],
        ];
        let y: Vec<f64> = x.iter().map(|r| 2.0 + 3.0 * r[0] + 5.0 * r[1]).collect();
        let f = fit(&x, &y, true).unwrap();
        assert!(close(f.intercept, 2.0), "{f:?}");
        assert!(close(f.coef(0).unwrap(), 3.0) && close(f.coef(1).unwrap(), 5.0));
        assert!(f.dropped.is_empty() && f.rel_rmse < 1e-9);
        assert!(close(f.predict(&[10.0, 10.0]), 82.0));
    }

    #[test]
    fn a_unit_that_never_moved_is_named_not_priced() {
        let x = vec![vec![1.0, 20.0], vec![2.0, 20.0], vec![5.0, 20.0]];
        let y = vec![3.0, 5.0, 11.0];
        let f = fit(&x, &y, true).unwrap();
        assert_eq!(f.dropped, vec![(1, CONSTANT)]);
        assert!(close(f.coef(0).unwrap(), 2.0) && close(f.intercept, 1.0));
    }

    #[test]
    fn units_in_step_keep_the_first() {
        let x = vec![vec![1.0, 2.0], vec![2.0, 4.0], vec![3.0, 6.0]];
        let y = vec![1.0, 2.0, 3.0];
        let f = fit(&x, &y, true).unwrap();
        assert_eq!(f.dropped, vec![(1, COLLINEAR)]);
        assert!(close(f.coef(0).unwrap(), 1.0));
    }

    #[test]
    fn negative_prices_are_refitted_without_the_unit() {
        // y falls a little with b (noise): b goes, a keeps its price.
        let x = vec![
            vec![1.0, 3.0],
            vec![2.0, 1.0],
            vec![3.0, 2.0],
            vec![4.0, 0.0],
        ];
        let y = vec![1.9, 4.05, 5.95, 8.1];
        let f = fit(&x, &y, true).unwrap();
        assert!(f.coefs.iter().all(|(_, c)| *c >= 0.0), "{f:?}");
        assert!(f.dropped.iter().any(|(i, r)| *i == 1 && *r == NEGATIVE));
        assert!((f.coef(0).unwrap() - 2.0).abs() < 0.1);
    }

    #[test]
    fn without_intercept_it_goes_through_zero() {
        let x = vec![vec![10.0, 1.0], vec![20.0, 1.0], vec![10.0, 3.0]];
        let y: Vec<f64> = x.iter().map(|r| 0.5 * r[0] + 100.0 * r[1]).collect();
        let f = fit(&x, &y, false).unwrap();
        assert_eq!(f.intercept, 0.0);
        assert!(close(f.coef(0).unwrap(), 0.5) && close(f.coef(1).unwrap(), 100.0));
        assert!(fit(&[], &[], true).is_none());
    }
}
