//! The Katib trial probe's contract (`kfconform probe trial`): which metric lines it prints for
//! which parameters, and the JSON line saying what it received. The probe prints with
//! [`render`]; the tuning tests recompute the same values with [`series`] from a Trial's
//! parameter assignments, so both sides agree without the tests ever reading the probe's code.
//!
//! Values are a hash of the parameters, not a formula: the minimum, maximum and latest value of
//! a metric then rank the trials of a grid in different orders, so a controller that picks the
//! optimum by the wrong value, or reports min, max and latest mixed up, is seen.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Metric lines printed per metric; the last one printed is the `latest`.
pub const LINES_PER_METRIC: usize = 3;

/// The `probe` field of the received line, so it is recognisable among other output.
pub const PROBE: &str = "trial";

/// How a metric line is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Style {
    /// `name=value`, `name = value`, `name =value`: all match Katib's default filter
    /// `([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)`.
    #[default]
    Equals,
    /// `name=value` on every line: what any filter that accepts the default format reads, for
    /// tests whose subject is not the parsing.
    Plain,
    /// `name: value`, for Experiments that set a custom `metricsFormat`.
    Colon,
}

/// What the probe was asked to do, printed back as one JSON line (`{"probe":"trial",...}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Received {
    /// Always [`PROBE`].
    pub probe: String,
    /// Every `--param name=value`, in the order given (a name may repeat).
    pub params: Vec<(String, String)>,
    /// The metrics it prints, in order.
    pub metrics: Vec<String>,
    /// The exit code it ends with.
    pub exit: u8,
}

impl Received {
    /// The line as printed.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Finds the probe's line in a log (any container's: Katib's collector echoes the primary
    /// container's output in its own log).
    pub fn from_log(log: &str) -> Option<Received> {
        log.lines()
            .filter_map(|l| {
                let start = l.find('{')?;
                serde_json::from_str::<Received>(&l[start..]).ok()
            })
            .find(|r| r.probe == PROBE)
    }
}

/// FNV-1a: tiny and stable across releases and platforms, which is all this needs (the
/// values must only be reproducible by the tests, not unpredictable).
fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain(std::iter::once(0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    // splitmix64's finaliser: FNV alone leaves inputs that differ in the last byte close.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The canonical form of an assignment: names sorted, one `name=value` per parameter (the last
/// value wins for a repeated name, as a later flag overrides an earlier one).
fn canonical(params: &[(String, String)]) -> String {
    let map: BTreeMap<&str, &str> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    map.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The values printed for `metric`, in print order: each in [0, 100) with three decimals.
pub fn series(params: &[(String, String)], metric: &str) -> [f64; LINES_PER_METRIC] {
    let key = canonical(params);
    std::array::from_fn(|i| {
        let h = fnv1a(&[&key, metric, &i.to_string()]);
        (h % 100_000) as f64 / 1000.0
    })
}

/// A value as printed (three decimals), which is also how Katib's collector stores it.
pub fn format_value(v: f64) -> String {
    format!("{v:.3}")
}

/// The summary Katib keeps for a metric: `(min, max, latest)` of [`series`].
pub fn summary(params: &[(String, String)], metric: &str) -> (f64, f64, f64) {
    let s = series(params, metric);
    let min = s.iter().copied().fold(f64::INFINITY, f64::min);
    let max = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (min, max, s[LINES_PER_METRIC - 1])
}

/// The metric lines the probe prints, metric after metric, optionally led by an RFC 3339
/// timestamp (`timestamps` gives each line's). The spacing around `=` varies from line to line
/// on purpose: Katib's default filter allows any.
pub fn render(
    params: &[(String, String)],
    metrics: &[String],
    style: Style,
    timestamps: Option<&dyn Fn(usize) -> String>,
) -> Vec<String> {
    let mut lines = Vec::new();
    for metric in metrics {
        for (i, v) in series(params, metric).iter().enumerate() {
            let v = format_value(*v);
            let body = match (style, i % 3) {
                (Style::Colon, _) => format!("{metric}: {v}"),
                (Style::Plain, _) | (Style::Equals, 0) => format!("{metric}={v}"),
                (Style::Equals, 1) => format!("{metric} = {v}"),
                (Style::Equals, _) => format!("{metric} ={v}"),
            };
            let n = lines.len();
            lines.push(match timestamps {
                Some(ts) => format!("{} {body}", ts(n)),
                None => body,
            });
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn values_are_stable_and_distinct() {
        let a = series(&p(&[("lr", "0.01"), ("momentum", "0.5")]), "loss");
        let b = series(&p(&[("momentum", "0.5"), ("lr", "0.01")]), "loss");
        assert_eq!(a, b, "order of the flags does not matter");
        assert!(a.iter().all(|v| (0.0..100.0).contains(v)));
        assert!(a[0] != a[1] && a[1] != a[2]);
        assert_ne!(
            a,
            series(&p(&[("lr", "0.01"), ("momentum", "0.6")]), "loss")
        );
        // Pinned: the tests of a released suite recompute these on other machines.
        let pinned = series(&p(&[("lr", "0.01"), ("m", "0.5")]), "loss");
        assert_eq!(pinned.map(format_value), ["6.026", "59.837", "39.168"]);
    }

    #[test]
    fn min_max_latest_rank_a_grid_differently() {
        let grid: Vec<_> = ["1", "2", "3", "4", "5", "6"]
            .iter()
            .map(|x| p(&[("x", x)]))
            .collect();
        let best = |f: &dyn Fn(&(f64, f64, f64)) -> f64| {
            grid.iter()
                .map(|g| f(&summary(g, "loss")))
                .enumerate()
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(i, _)| i)
        };
        let by_min = best(&|s| s.0);
        let by_latest = best(&|s| s.2);
        assert_ne!(by_min, by_latest);
    }

    #[test]
    fn rendered_lines_and_received_line() {
        let params = p(&[("lr", "0.01")]);
        let lines = render(&params, &["loss".into()], Style::Equals, None);
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("loss="));
        assert!(lines[1].starts_with("loss = "));
        let r = Received {
            probe: PROBE.into(),
            params,
            metrics: vec!["loss".into()],
            exit: 0,
        };
        let log = format!("noise\n{}\nloss=1\n", r.to_line());
        assert_eq!(Received::from_log(&log), Some(r));
    }
}
