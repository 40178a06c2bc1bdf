//! `kfconform probe`: the entry point of probe pods. Each role prints what it verified on
//! stdout; the logic lives in the `kfconform-probe` crate.

use std::time::Duration;

use clap::{Args, Subcommand};

use crate::{Error, ExitCode};
use kfconform_probe::{self as workload, Framework, TrainOptions};

/// Arguments of `kfconform probe`.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    #[command(subcommand)]
    role: Role,
}

#[derive(Debug, Subcommand)]
enum Role {
    /// Check the distributed-training environment, then rendezvous with the other replicas
    /// over TCP; prints one JSON verdict line, exits 1 on any violation.
    Train {
        /// Whose environment contract to check.
        #[arg(long, default_value = "pytorch", value_parser = ["pytorch", "torchrun"])]
        framework: String,
        /// How long the rendezvous may take, e.g. 120s, 500ms, 2m.
        #[arg(long, default_value = "120s", value_parser = workload::parse_duration)]
        rendezvous_timeout: Duration,
    },
    /// Print a line and exit with the given code (failure paths).
    Fail {
        /// Exit code.
        #[arg(long)]
        code: u8,
    },
    /// Print a line, sleep, print another (lifetime tests).
    Sleep {
        /// How long to sleep.
        #[arg(long)]
        seconds: f64,
    },
    /// Serve HTTP (Deployments, Services, readiness and liveness probes, the API server's
    /// proxy): `/healthz`, `POST /unhealthy|/healthy`, `/status/{code}`, `POST /exit?code=N`,
    /// and an echo of any other request as JSON.
    Http {
        /// Port to listen on (repeatable).
        #[arg(long = "port", default_value = "8080")]
        ports: Vec<u16>,
    },
    /// GET a URL from inside the pod (Services through the hosts map and the service proxy):
    /// prints `{"url", "status", "body"}` as one JSON line, exits 1 unless the answer is 2xx.
    Fetch {
        /// `http://host[:port][/path][?query]`.
        #[arg(long)]
        url: String,
        /// How long to retry connections that fail or close without an answer.
        #[arg(long, default_value = "10s", value_parser = workload::parse_duration)]
        timeout: Duration,
    },
    /// A Katib trial's workload: prints what it received as one JSON line, then each metric
    /// three times with values derived from the parameters (so min, max and latest differ),
    /// then exits with `--exit`.
    Trial {
        /// A parameter, `name=value` (repeatable; Katib substitutes the values).
        #[arg(long = "param", value_parser = workload::trial::parse_param)]
        params: Vec<(String, String)>,
        /// A metric to print (repeatable); leave the objective out to make it unavailable.
        #[arg(long = "metric")]
        metrics: Vec<String>,
        /// How metric lines are written: `equals` (Katib's default filter, with varied spacing
        /// around `=`), `plain` (`name=value` only) or `colon`.
        #[arg(long, default_value = "equals", value_parser = ["equals", "plain", "colon"])]
        style: String,
        /// Lead each metric line with an RFC 3339 timestamp.
        #[arg(long)]
        timestamps: bool,
        /// Exit code after printing.
        #[arg(long, default_value = "0")]
        exit: u8,
    },
    /// Print the environment as one JSON object line (downward API checks).
    Env {
        /// Only variables whose name starts with this.
        #[arg(long, default_value = "")]
        prefix: String,
    },
}

/// Runs a probe role.
pub async fn probe(args: ProbeArgs) -> Result<ExitCode, Error> {
    workload::arm_lifeline();
    match args.role {
        Role::Train {
            framework,
            rendezvous_timeout,
        } => {
            // clap has already restricted the value to the known names.
            let framework: Framework = framework.parse().map_err(Error::usage)?;
            let verdict = workload::train::run(&TrainOptions {
                framework,
                rendezvous_timeout,
            })
            .await;
            workload::print_line(&verdict.to_line());
            Ok(if verdict.ok {
                ExitCode::Ok
            } else {
                ExitCode::NotConformant
            })
        }
        Role::Fail { code } => {
            workload::print_line(&format!("kfconform probe fail: exiting with code {code}"));
            // Arbitrary codes are the point of this role; ExitCode only knows the suite's.
            std::process::exit(i32::from(code));
        }
        Role::Sleep { seconds } => {
            let d = Duration::try_from_secs_f64(seconds)
                .map_err(|e| Error::usage(format!("--seconds {seconds}: {e}")))?;
            workload::print_line(&format!("kfconform probe sleep: sleeping {seconds}s"));
            tokio::time::sleep(d).await;
            workload::print_line("kfconform probe sleep: done");
            Ok(ExitCode::Ok)
        }
        Role::Http { ports } => {
            workload::http::run(&workload::http::HttpOptions { ports })
                .await
                .map_err(|e| Error::harness(format!("kfconform probe http: {e}")))?;
            Ok(ExitCode::Ok)
        }
        Role::Fetch { url, timeout } => {
            let ok = workload::fetch::run(&workload::fetch::FetchOptions { url, timeout }).await;
            Ok(if ok {
                ExitCode::Ok
            } else {
                ExitCode::NotConformant
            })
        }
        Role::Trial {
            params,
            metrics,
            style,
            timestamps,
            exit,
        } => {
            let style = match style.as_str() {
                "colon" => kfconform_core::trial::Style::Colon,
                "plain" => kfconform_core::trial::Style::Plain,
                _ => kfconform_core::trial::Style::Equals,
            };
            let code = workload::trial::run(&workload::trial::TrialOptions {
                params,
                metrics,
                style,
                timestamps,
                exit,
            });
            if code != 0 {
                // Arbitrary codes are the point of `--exit`; ExitCode only knows the suite's.
                std::process::exit(i32::from(code));
            }
            Ok(ExitCode::Ok)
        }
        Role::Env { prefix } => {
            let vars: std::collections::BTreeMap<String, String> = std::env::vars()
                .filter(|(k, _)| k.starts_with(&prefix))
                .collect();
            workload::print_line(&serde_json::to_string(&vars).unwrap_or_default());
            Ok(ExitCode::Ok)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        use kfconform_probe::parse_duration;
        assert_eq!(parse_duration("120s"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("3h").is_err());
    }
}
