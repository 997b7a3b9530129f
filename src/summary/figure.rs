//! What a figure of the summary is, declared once beside its field: its unit, which way is
//! worse, how repeats of one plan merge it, whose it is (the system under test or the load
//! generator), and which of `compare`'s default limits judges it. `compare --list`, the
//! repeats' merge and every reader take these from the type, not from the figure's name.

use serde::{Deserialize, Serialize};

/// The unit a figure is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Ms,
    S,
    Count,
    PerMin,
    PerS,
    /// A share or a quotient of two figures (0.99, or 200 for a poll/push ratio).
    Ratio,
    Bytes,
    BytesPerS,
    Cores,
    Mb,
    /// A position in a list (an instance's or a node's number); not a quantity.
    Index,
}

/// Which way a figure gets worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    Lower,
    Higher,
    /// Neither way is worse: a count of work done, a setting, a prediction.
    Neither,
}

/// How the figures of several repeats of one plan become one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Merge {
    /// The median of the repeats.
    Median,
    /// The worst repeat's (the highest): losses and errors, which must never rise.
    Worst,
    /// The same in every repeat by construction (a user count, a setting): kept as it is,
    /// or their median should they differ.
    Same,
    /// Read again from every repeat's histogram added up (latency), so p50 <= p99 <= max.
    Histogram,
}

/// Whose figure it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Owner {
    /// The system under test: the servers, ingest, Postgres and Redis, and what users get
    /// from them (latency, losses).
    System,
    /// The swarm that plays the users: its CPU, memory, panics and dropped reports.
    LoadGenerator,
    /// The event source: what it was asked to emit and what it did.
    Workload,
    /// A figure computed from a formula, shown beside its measurement.
    Prediction,
    /// What the run was (users, duration): neither side's cost.
    Run,
    /// The system under test and the load generator together.
    Both,
}

/// Which of `compare`'s default limits judges a figure (the limits themselves, measured on
/// this machine, are in `report::compare`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    /// Shown without a verdict.
    None,
    /// Must not rise at all.
    MustNotRise,
    /// Deliveries: may fall a little.
    Delivered,
    /// A latency's mean or median.
    LatencyCentral,
    /// A latency's p90 or p99.
    LatencyTail,
    /// A rate of work (queries, bytes, requests): a small change is a change.
    Rate,
    /// CPU of one part.
    Cpu,
    /// CPU of several parts together, which adds up their noise.
    CpuTotal,
    Memory,
    /// A poll/push ratio measured side by side in one run.
    SideBySide,
}

/// One figure's declaration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Figure {
    pub unit: Unit,
    pub better: Better,
    pub merge: Merge,
    pub owner: Owner,
    pub gate: Gate,
}

impl Figure {
    pub const fn new(unit: Unit, better: Better, merge: Merge, owner: Owner, gate: Gate) -> Self {
        Figure {
            unit,
            better,
            merge,
            owner,
            gate,
        }
    }

    /// The same figure, another owner.
    pub const fn of(self, owner: Owner) -> Self {
        Figure { owner, ..self }
    }

    /// The same figure, judged by another gate.
    pub const fn gated(self, gate: Gate) -> Self {
        Figure { gate, ..self }
    }
}

/// A part of the summary: which figures it holds, and how repeats of it merge.
pub trait Figures: Clone {
    /// Adds `(path, declaration)` for every figure under `path`; lists add `*` for their
    /// index. `figure` is the declaration its parent gave this field (leaves need one).
    fn describe(path: &str, figure: Option<Figure>, out: &mut Vec<(String, Figure)>);
    /// The one value that stands for `items` (the repeats' values, never empty).
    fn merge(items: &[&Self], figure: Option<Figure>) -> Self;
    /// Adds `(path, value)` for every figure this value holds, lists by index; `None`
    /// where a figure is unknown.
    fn values(&self, path: &str, figure: Option<Figure>, out: &mut Vec<(String, Option<f64>)>);
}

pub(crate) fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

/// `x` rounded to `digits` decimals, as the summary writes its figures.
pub fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// The median of some numbers (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn merge_numbers(values: &[f64], figure: Option<Figure>) -> f64 {
    if values.iter().all(|v| *v == values[0]) {
        return values[0];
    }
    match figure.map(|f| f.merge) {
        Some(Merge::Worst) => values.iter().copied().fold(f64::MIN, f64::max),
        _ => median(values).expect("merge is given at least one value"),
    }
}

impl Figures for f64 {
    fn describe(path: &str, figure: Option<Figure>, out: &mut Vec<(String, Figure)>) {
        if let Some(f) = figure {
            out.push((path.to_string(), f));
        }
    }
    fn merge(items: &[&Self], figure: Option<Figure>) -> Self {
        let values: Vec<f64> = items.iter().map(|x| **x).collect();
        merge_numbers(&values, figure)
    }
    fn values(&self, path: &str, figure: Option<Figure>, out: &mut Vec<(String, Option<f64>)>) {
        if figure.is_some() {
            out.push((path.to_string(), Some(*self)));
        }
    }
}

macro_rules! integer_figures {
    ($($t:ty),*) => {$(
        impl Figures for $t {
            fn describe(path: &str, figure: Option<Figure>, out: &mut Vec<(String, Figure)>) {
                if let Some(f) = figure {
                    out.push((path.to_string(), f));
                }
            }
            /// A median of counts between two integers is rounded up, to the worse side
            /// of a count that must not rise.
            fn merge(items: &[&Self], figure: Option<Figure>) -> Self {
                let values: Vec<f64> = items.iter().map(|x| **x as f64).collect();
                merge_numbers(&values, figure).ceil() as $t
            }
            fn values(
                &self,
                path: &str,
                figure: Option<Figure>,
                out: &mut Vec<(String, Option<f64>)>,
            ) {
                if figure.is_some() {
                    out.push((path.to_string(), Some(*self as f64)));
                }
            }
        }
    )*};
}
integer_figures!(u64, usize, u32, i64);

/// Values that are not figures (text, flags, pairs of ids): the first repeat's is kept.
macro_rules! not_figures {
    ($($t:ty),*) => {$(
        impl Figures for $t {
            fn describe(_: &str, _: Option<Figure>, _: &mut Vec<(String, Figure)>) {}
            fn merge(items: &[&Self], _: Option<Figure>) -> Self {
                items[0].clone()
            }
            fn values(&self, _: &str, _: Option<Figure>, _: &mut Vec<(String, Option<f64>)>) {}
        }
    )*};
}
not_figures!(String, bool, (u64, u64), serde_json::Value);

impl<T: Figures> Figures for Option<T> {
    fn describe(path: &str, figure: Option<Figure>, out: &mut Vec<(String, Figure)>) {
        T::describe(path, figure, out);
    }
    /// Unknown (null) in some repeats: merged from the repeats that measured it.
    fn merge(items: &[&Self], figure: Option<Figure>) -> Self {
        let known: Vec<&T> = items.iter().filter_map(|x| x.as_ref()).collect();
        (!known.is_empty()).then(|| T::merge(&known, figure))
    }
    /// A figure that is unknown is listed as `None`; an absent part lists nothing.
    fn values(&self, path: &str, figure: Option<Figure>, out: &mut Vec<(String, Option<f64>)>) {
        match self {
            Some(x) => x.values(path, figure, out),
            None if figure.is_some() => out.push((path.to_string(), None)),
            None => {}
        }
    }
}

impl<T: Figures> Figures for Vec<T> {
    fn describe(path: &str, figure: Option<Figure>, out: &mut Vec<(String, Figure)>) {
        T::describe(&join(path, "*"), figure, out);
    }
    /// Entry by entry, as long as the first repeat's list.
    fn merge(items: &[&Self], figure: Option<Figure>) -> Self {
        (0..items[0].len())
            .map(|i| {
                let at: Vec<&T> = items.iter().filter_map(|x| x.get(i)).collect();
                T::merge(&at, figure)
            })
            .collect()
    }
    fn values(&self, path: &str, figure: Option<Figure>, out: &mut Vec<(String, Option<f64>)>) {
        for (i, x) in self.iter().enumerate() {
            x.values(&join(path, &i.to_string()), figure, out);
        }
    }
}

/// How a figure's field is read: integer counts also from a number with a fraction, as
/// summaries written before the typed merge kept the median of an even number of repeats
/// (602.5 deliveries), rounded to the nearest.
pub trait Leaf: Sized {
    fn read<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error>;
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Number {
    U(u64),
    I(i64),
    F(f64),
}

impl Number {
    fn float(self) -> f64 {
        match self {
            Number::U(x) => x as f64,
            Number::I(x) => x as f64,
            Number::F(x) => x,
        }
    }
}

impl Leaf for f64 {
    fn read<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Number::deserialize(d).map(Number::float)
    }
}

macro_rules! integer_leaves {
    ($($t:ty),*) => {$(
        impl Leaf for $t {
            fn read<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let x = Number::deserialize(d)?.float().round();
                if x < <$t>::MIN as f64 || x > <$t>::MAX as f64 {
                    return Err(serde::de::Error::custom(format!(
                        "{x} is out of range for a count"
                    )));
                }
                Ok(x as $t)
            }
        }
    )*};
}
integer_leaves!(u64, usize, u32, i64);

impl<T: Leaf> Leaf for Option<T> {
    fn read<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Wrap<T: Leaf>(#[serde(deserialize_with = "Leaf::read")] T);
        Ok(Option::<Wrap<T>>::deserialize(d)?.map(|w| w.0))
    }
}

/// Declares a part of the summary: a serde struct whose fields carry their figure's
/// declaration (`name: Type = FIGURE,`), or none for a field that is itself a part, text
/// or a list (`name: Type,`). Attributes on a field (`#[serde(..)]`, docs) pass through.
macro_rules! part {
    (
        $(#[$attr:meta])*
        pub struct $name:ident {
            $( $(#[$fattr:meta])* $field:ident : $ty:ty $(= $fig:expr)? ),* $(,)?
        }
    ) => {
        $(#[$attr])*
        #[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(default)]
        pub struct $name {
            $(
                $(#[$fattr])*
                // A figure's field reads any number (see `Leaf`); its declaration shows
                // in the docs.
                $(
                    #[doc = concat!("\n\nDeclared as `", stringify!($fig), "`.")]
                    #[serde(deserialize_with = "crate::summary::figure::Leaf::read")]
                )?
                pub $field: $ty,
            )*
        }

        impl $crate::summary::figure::Figures for $name {
            fn describe(
                path: &str,
                _: Option<$crate::summary::figure::Figure>,
                out: &mut Vec<(String, $crate::summary::figure::Figure)>,
            ) {
                $(
                    <$ty as $crate::summary::figure::Figures>::describe(
                        &$crate::summary::figure::join(path, stringify!($field)),
                        part!(@figure $($fig)?),
                        out,
                    );
                )*
            }

            fn merge(items: &[&Self], _: Option<$crate::summary::figure::Figure>) -> Self {
                $name {
                    $(
                        $field: <$ty as $crate::summary::figure::Figures>::merge(
                            &items.iter().map(|x| &x.$field).collect::<Vec<_>>(),
                            part!(@figure $($fig)?),
                        ),
                    )*
                }
            }

            fn values(
                &self,
                path: &str,
                _: Option<$crate::summary::figure::Figure>,
                out: &mut Vec<(String, Option<f64>)>,
            ) {
                $(
                    $crate::summary::figure::Figures::values(
                        &self.$field,
                        &$crate::summary::figure::join(path, stringify!($field)),
                        part!(@figure $($fig)?),
                        out,
                    );
                )*
            }
        }
    };
    (@figure) => { None };
    (@figure $fig:expr) => { Some($fig) };
}
pub(crate) use part;

#[cfg(test)]
mod tests {
    use super::*;

    const P: Figure = Figure::new(
        Unit::Ms,
        Better::Lower,
        Merge::Median,
        Owner::System,
        Gate::None,
    );
    const W: Figure = Figure::new(
        Unit::Count,
        Better::Lower,
        Merge::Worst,
        Owner::System,
        Gate::MustNotRise,
    );

    part! {
        pub struct Inner {
            p50: Option<f64> = P,
            lost: u64 = W,
            label: String,
        }
    }
    part! {
        pub struct Outer {
            inner: Inner,
            list: Vec<Inner>,
        }
    }

    #[test]
    fn parts_describe_their_figures_and_merge_by_each_rule() {
        let mut out = Vec::new();
        Outer::describe("", None, &mut out);
        let paths: Vec<&str> = out.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            ["inner.p50", "inner.lost", "list.*.p50", "list.*.lost"]
        );
        assert_eq!(out[1].1, W);

        let one = |p50: Option<f64>, lost: u64| Inner {
            p50,
            lost,
            label: format!("{lost}"),
        };
        let a = Outer {
            inner: one(Some(1.0), 0),
            list: vec![one(Some(1.0), 1), one(None, 0)],
        };
        let b = Outer {
            inner: one(Some(5.0), 3),
            list: vec![one(Some(3.0), 0)],
        };
        let c = Outer {
            inner: one(None, 1),
            list: vec![one(Some(2.0), 2), one(Some(4.0), 0)],
        };
        let m = Outer::merge(&[&a, &b, &c], None);
        // Median of what was measured; the worst loss; text from the first.
        assert_eq!(m.inner.p50, Some(3.0));
        assert_eq!(m.inner.lost, 3);
        assert_eq!(m.inner.label, "0");
        assert_eq!(m.list.len(), 2);
        assert_eq!(m.list[0].p50, Some(2.0));
        assert_eq!(m.list[0].lost, 2);
        assert_eq!(m.list[1].p50, Some(4.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }
}
