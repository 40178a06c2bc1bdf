//! `kfconform keygen` and `kfconform sign`.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::{Error, ExitCode};
use kfconform_suite::report::bundle::{self, Product};
use kfconform_suite::report::dsse::{self, Envelope};
use kfconform_suite::report::keys::{self, SigningKey};
use kfconform_suite::report::{self, Report, ReportError};

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
    crate::outln!("wrote {} (keep it secret)", private.display());
    crate::outln!("wrote {} (key id {id})", public.display());
    Ok(ExitCode::Ok)
}

pub(super) fn sign(args: SignArgs) -> Result<ExitCode, Error> {
    let key = SigningKey::load(&args.key)?;
    let path = if args.add {
        countersign(&args.results, &key)?
    } else {
        let report = read_results_report(&args.results)?;
        let product = args
            .product
            .as_deref()
            .map(|p| load_product(p, &report.config.profile))
            .transpose()?;
        sign_results(&args.results, &key, product)?
    };
    crate::outln!(
        "wrote {} (signed by key {})",
        path.display(),
        key.public().key_id()
    );
    Ok(ExitCode::Ok)
}

/// Signs a results directory: an in-toto Statement over report.json, junit.xml, report.html
/// and the evidence the report names, with `product` (validated by [`load_product`]) inside,
/// wrapped in a DSSE envelope written to report.dsse.json. The one signing path of `run
/// --sign-key` and `sign`.
pub(crate) fn sign_results(
    dir: &Path,
    key: &SigningKey,
    product: Option<Product>,
) -> Result<PathBuf, Error> {
    let report = read_results_report(dir)?;
    let product = product.as_ref().map(Product::to_json);
    // report.html is signed with the rest: rewrite it first with what the signer knows (the
    // product, and that it is signed), so the signed page says what the signature covers.
    let page = report::html::Page {
        product: product.as_ref().and_then(report::product_line),
        signed: true,
    };
    report::html::write_html(dir, &report, &page)?;
    let statement = dsse::statement_for(dir, &report, product)?;
    Ok(dsse::write_envelope(dir, &dsse::sign(&statement, key))?)
}

/// Loads and validates PRODUCT.yaml for a run of `profile` (every problem at once, exit 2):
/// the one validation `run --product`, `sign --product` and `bundle --product` share.
pub(crate) fn load_product(path: &Path, profile: &str) -> Result<Product, Error> {
    Ok(bundle::load_product(path, Some(profile)).map_err(ReportError::from)?)
}

/// The report.json of a results directory that is to be signed.
fn read_results_report(dir: &Path) -> Result<Report, Error> {
    Ok(report::read_report(&dir.join(report::REPORT_JSON))?)
}

fn countersign(dir: &Path, key: &SigningKey) -> Result<PathBuf, Error> {
    let mut env: Envelope = dsse::read_envelope(&dir.join(dsse::DSSE_JSON))?;
    dsse::add_signature(&mut env, key)?;
    Ok(dsse::write_envelope(dir, &env)?)
}
