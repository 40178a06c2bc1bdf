//! `kfconform keygen` and `kfconform sign`.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::{Error, ExitCode};
use kfconform_suite::report::dsse::{self, Envelope};
use kfconform_suite::report::keys::{self, SigningKey};

/// Arguments of `kfconform keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Directory for kfconform.key (PKCS#8 PEM, mode 0600) and kfconform.pub (SPKI PEM).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out: PathBuf,
}

/// Arguments of `kfconform sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// Results directory holding report.json, junit.xml and evidence/.
    pub results: PathBuf,
    /// Ed25519 private key (PKCS#8 PEM, e.g. from `kfconform keygen` or `openssl genpkey -algorithm ed25519`).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// Product metadata to put inside the signed statement (needed for `kfconform bundle`).
    #[arg(long, value_name = "PRODUCT.yaml", conflicts_with = "add")]
    pub product: Option<PathBuf>,
    /// Countersign an existing report.dsse.json instead of replacing it (a reviewer's signature).
    #[arg(long)]
    pub add: bool,
}

pub(super) fn keygen(args: KeygenArgs) -> Result<ExitCode, Error> {
    let (private, public) = keys::write_keypair(&args.out)?;
    let id = keys::PublicKey::load(&public)?.key_id();
    println!("wrote {} (keep it secret)", private.display());
    println!("wrote {} (key id {id})", public.display());
    Ok(ExitCode::Ok)
}

pub(super) fn sign(args: SignArgs) -> Result<ExitCode, Error> {
    let key = SigningKey::load(&args.key)?;
    let path = if args.add {
        countersign(&args.results, &key)?
    } else {
        sign_results(&args.results, &key, None)?
    };
    println!(
        "wrote {} (signed by key {})",
        path.display(),
        key.public().key_id()
    );
    Ok(ExitCode::Ok)
}

/// Signs a results directory: an in-toto Statement over report.json, junit.xml and evidence,
/// wrapped in a DSSE envelope written to report.dsse.json.
pub(crate) fn sign_results(
    dir: &Path,
    key: &SigningKey,
    product: Option<serde_json::Value>,
) -> Result<PathBuf, Error> {
    let report =
        kfconform_suite::report::read_report(&dir.join(kfconform_suite::report::REPORT_JSON))?;
    let statement = dsse::statement_for(dir, &report, product)?;
    Ok(dsse::write_envelope(dir, &dsse::sign(&statement, key))?)
}

/// Loads PRODUCT.yaml as the JSON the statement carries; a bad file is the user's to fix.
pub(crate) fn load_product(path: &Path) -> Result<serde_json::Value, Error> {
    let product = kfconform_suite::report::bundle::load_product(path)
        .map_err(|e| Error::usage(e.to_string()))?;
    Ok(product.to_json())
}

fn countersign(dir: &Path, key: &SigningKey) -> Result<PathBuf, Error> {
    let mut env: Envelope = dsse::read_envelope(&dir.join(dsse::DSSE_JSON))?;
    dsse::add_signature(&mut env, key)?;
    Ok(dsse::write_envelope(dir, &env)?)
}
