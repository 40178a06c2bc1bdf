//! `kfconform probe trial`: a Katib trial's workload. It prints the JSON line of what it
//! received, then its metric lines ([`kfconform_core::trial::render`]), then exits with the
//! code it was given, so tuning tests can drive successes, failures and missing metrics.

use kfconform_core::trial::{PROBE, Received, Style, render};

/// What the trial role was asked to do.
#[derive(Debug, Clone)]
pub struct TrialOptions {
    /// `name=value` pairs, in the order given.
    pub params: Vec<(String, String)>,
    /// Metrics to print (an objective left out is how a test makes it "unavailable").
    pub metrics: Vec<String>,
    /// How each metric line is written.
    pub style: Style,
    /// Lead each metric line with an RFC 3339 timestamp, one second apart.
    pub timestamps: bool,
    /// Exit code after printing.
    pub exit: u8,
}

/// Parses one `--param` value: `name=value` (the value may be empty or contain `=`).
pub fn parse_param(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not name=value")),
    }
}

/// Prints the received line and the metric lines; returns the exit code to end with.
pub fn run(opts: &TrialOptions) -> u8 {
    let received = Received {
        probe: PROBE.to_string(),
        params: opts.params.clone(),
        metrics: opts.metrics.clone(),
        exit: opts.exit,
    };
    crate::print_line(&received.to_line());
    let start = chrono::Utc::now();
    let stamp = |i: usize| {
        let t = start + chrono::Duration::seconds(i64::try_from(i).unwrap_or(0));
        t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let stamps: Option<&dyn Fn(usize) -> String> = opts.timestamps.then_some(&stamp);
    for line in render(&opts.params, &opts.metrics, opts.style, stamps) {
        crate::print_line(&line);
    }
    opts.exit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params() {
        assert_eq!(parse_param("lr=0.1"), Ok(("lr".into(), "0.1".into())));
        assert_eq!(parse_param("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert_eq!(parse_param("x="), Ok(("x".into(), String::new())));
        assert!(parse_param("=1").is_err());
        assert!(parse_param("nothing").is_err());
    }
}
