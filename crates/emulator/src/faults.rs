//! Faults: API-server trouble the emulator can inject (`--fault KIND=VALUE`) so the runner's
//! robustness is tested the way a slow or flaky real cluster would test it.

use std::str::FromStr;
use std::time::Duration;

use super::EmulatorError;

/// Injected API-server trouble; the default injects none.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// Added before every API request is handled.
    pub latency: Option<Duration>,
}

/// One `--fault` argument.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// `latency=150ms`: every request waits this long first.
    Latency(Duration),
}

impl Faults {
    /// Folds parsed `--fault` arguments together (later ones win).
    pub fn from_list(list: &[Fault]) -> Faults {
        let mut f = Faults::default();
        for fault in list {
            match fault {
                Fault::Latency(d) => f.latency = Some(*d),
            }
        }
        f
    }
}

fn parse_duration(s: &str) -> Option<Duration> {
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map(|i| s.split_at(i))
        .unwrap_or((s, "ms"));
    let n: u64 = num.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        _ => None,
    }
}

impl FromStr for Fault {
    type Err = EmulatorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || EmulatorError::UnknownFault(s.to_string());
        match s.split_once('=') {
            Some(("latency", v)) => parse_duration(v).map(Fault::Latency).ok_or_else(bad),
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_latency() {
        assert_eq!(
            "latency=150ms".parse::<Fault>().unwrap(),
            Fault::Latency(Duration::from_millis(150))
        );
        assert_eq!(
            "latency=2s".parse::<Fault>().unwrap(),
            Fault::Latency(Duration::from_secs(2))
        );
        assert!("latency=fast".parse::<Fault>().is_err());
        assert!("chaos=1".parse::<Fault>().is_err());
    }
}
