//! `PRODUCT.yaml`: who submits what. The CNCF k8s-conformance program's fields (`vendor`,
//! `name`, `version`, `website_url`, `repo_url`, `documentation_url`, `product_logo_url`,
//! `type`, `description`) plus `kubeflow_release` and `contact_email`; the names kfconform took
//! first (`product`, `repository_url`) are accepted as aliases.
//!
//! `run --product`, `sign --product`, `bundle --product` and `verify` of a bundle all validate
//! through [`load_product`] / [`Product::from_yaml`], and every problem of a file is reported at
//! once, so a vendor fixes the file in one go.

use std::fmt;
use std::fs::File;
use std::io::Read as _;
use std::path::Path;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::catalog::Catalog;

/// Largest PRODUCT.yaml accepted: a real one is a dozen lines.
pub const MAX_PRODUCT_BYTES: u64 = 64 * 1024;

/// Longest one-line text field (vendor, name, version).
const MAX_TEXT: usize = 200;
/// Longest description (CNCF asks for one sentence).
const MAX_DESCRIPTION: usize = 1000;

/// What kind of offering the vendor submits (the CNCF program's three kinds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProductType {
    /// A Kubeflow distribution the user installs and runs.
    Distribution,
    /// A managed service.
    Hosted,
    /// An installer that deploys upstream Kubeflow.
    Installer,
}

/// A validated PRODUCT.yaml. Signed into the statement's `predicate.product` (as
/// [`Product::to_json`], canonical field names) so a reviewer knows the vendor vouches for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Product {
    /// Legal entity submitting.
    pub vendor: String,
    /// Product name.
    #[serde(alias = "product")]
    pub name: String,
    /// Product version the run tested (not the Kubeflow or Kubernetes version).
    pub version: String,
    /// Kubeflow release the product ships, e.g. `26.03`; must be the claimed profile's release.
    pub kubeflow_release: String,
    /// URL of the product page.
    pub website_url: String,
    /// URL of the installation documentation a reviewer can follow.
    pub documentation_url: String,
    /// URL of the source repository, for open-source products.
    #[serde(
        default,
        alias = "repository_url",
        skip_serializing_if = "Option::is_none"
    )]
    pub repo_url: Option<String>,
    /// URL of the product's logo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_logo_url: Option<String>,
    /// Where the foundation reaches the vendor about this submission.
    pub contact_email: String,
    /// Distribution, hosted service or installer.
    pub r#type: ProductType,
    /// One sentence describing the offering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A PRODUCT.yaml that cannot be used: every problem found, one line each.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ProductError {
    /// The file as the user named it.
    pub path: String,
    /// One line per problem, each starting with the field it concerns.
    pub problems: Vec<String>,
}

impl fmt::Display for ProductError {
    /// One problem: `PATH: problem`. Several: `PATH: N problems:` then one indented line each,
    /// so the first line always names the file.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problems.as_slice() {
            [one] => write!(f, "{}: {one}", self.path),
            many => {
                write!(f, "{}: {} problems:", self.path, many.len())?;
                for p in many {
                    write!(f, "\n  - {p}")?;
                }
                Ok(())
            }
        }
    }
}

impl ProductError {
    fn one(path: &str, problem: String) -> Self {
        ProductError {
            path: path.to_string(),
            problems: vec![problem],
        }
    }
}

/// How a field's value is checked.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Description,
    Url,
    Email,
    Release,
    Type,
}

/// One PRODUCT.yaml field: canonical name, older alias, whether it must be given.
struct Field {
    name: &'static str,
    alias: Option<&'static str>,
    required: bool,
    kind: Kind,
}

/// Every field, in the order problems are reported (the CNCF order, then kfconform's two).
const FIELDS: &[Field] = &[
    field("vendor", None, true, Kind::Text),
    field("name", Some("product"), true, Kind::Text),
    field("version", None, true, Kind::Text),
    field("website_url", None, true, Kind::Url),
    field("repo_url", Some("repository_url"), false, Kind::Url),
    field("documentation_url", None, true, Kind::Url),
    field("product_logo_url", None, false, Kind::Url),
    field("type", None, true, Kind::Type),
    field("description", None, false, Kind::Description),
    field("kubeflow_release", None, true, Kind::Release),
    field("contact_email", None, true, Kind::Email),
];

const fn field(
    name: &'static str,
    alias: Option<&'static str>,
    required: bool,
    kind: Kind,
) -> Field {
    Field {
        name,
        alias,
        required,
        kind,
    }
}

impl Product {
    /// The JSON form put into (and compared with) the signed statement's `predicate.product`.
    pub fn to_json(&self) -> serde_json::Value {
        // Plain strings and a unit enum: serialising cannot fail.
        serde_json::to_value(self).unwrap_or_default()
    }

    /// Parses and validates PRODUCT.yaml text; `file` names it in errors. Reports every
    /// missing, malformed, duplicated or unknown field at once.
    pub fn from_yaml(text: &str, file: &str) -> Result<Product, ProductError> {
        let fields = parse_fields(text).map_err(|e| ProductError::one(file, e))?;
        let mut problems = Vec::new();
        let mut values: BTreeMap<&'static str, String> = BTreeMap::new();
        for spec in FIELDS {
            let given = fields.get(spec.name);
            let by_alias = spec.alias.and_then(|a| fields.get(a).map(|v| (a, v)));
            let value = match (given, by_alias) {
                (Some(_), Some((alias, _))) => {
                    problems.push(format!(
                        "{}: given twice (also as {alias}, its older name); keep {}",
                        spec.name, spec.name
                    ));
                    continue;
                }
                (Some(v), None) => (spec.name, v),
                // Problems name the field as the file spells it.
                (None, Some((alias, v))) => (alias, v),
                (None, None) => (spec.name, &Raw::Null),
            };
            match value {
                (key, Raw::Null) if spec.required => problems.push(format!("{key}: missing")),
                (_, Raw::Null) => {}
                (key, Raw::Other(what)) => {
                    problems.push(format!("{key}: must be text, not {what}"));
                }
                (key, Raw::Text(v)) => match check(spec.kind, v) {
                    Ok(()) => {
                        values.insert(spec.name, v.clone());
                    }
                    Err(p) => problems.push(format!("{key}: {p}")),
                },
            }
        }
        for key in fields.keys() {
            let known = FIELDS
                .iter()
                .any(|f| f.name == key || f.alias == Some(key.as_str()));
            if !known {
                problems.push(unknown_field(key));
            }
        }
        if !problems.is_empty() {
            return Err(ProductError {
                path: file.to_string(),
                problems,
            });
        }
        let mut take = |name: &str| values.remove(name);
        let r#type = match take("type").as_deref() {
            Some("hosted") => ProductType::Hosted,
            Some("installer") => ProductType::Installer,
            _ => ProductType::Distribution,
        };
        Ok(Product {
            vendor: take("vendor").unwrap_or_default(),
            name: take("name").unwrap_or_default(),
            version: take("version").unwrap_or_default(),
            kubeflow_release: take("kubeflow_release").unwrap_or_default(),
            website_url: take("website_url").unwrap_or_default(),
            documentation_url: take("documentation_url").unwrap_or_default(),
            repo_url: take("repo_url"),
            product_logo_url: take("product_logo_url"),
            contact_email: take("contact_email").unwrap_or_default(),
            r#type,
            description: take("description"),
        })
    }

    /// The problem with claiming this product for `profile` (a profile of `catalog`): its
    /// `kubeflow_release` must be the profile's release. `None` when fine or the profile is
    /// unknown (the run or verify reports that itself).
    pub fn release_problem(&self, catalog: &Catalog, profile: &str) -> Option<String> {
        let profile = catalog.profile(profile).ok()?;
        (profile.release != self.kubeflow_release).then(|| {
            format!(
                "kubeflow_release: {} is not the release of profile {} ({})",
                self.kubeflow_release, profile.name, profile.release
            )
        })
    }
}

/// Reads and validates a PRODUCT.yaml file; with `profile`, also checks that the product is for
/// that profile's release. The one validation `run`, `sign` and `bundle` share.
pub fn load_product(path: &Path, profile: Option<&str>) -> Result<Product, ProductError> {
    let shown = path.display().to_string();
    let text = read_product_text(path).map_err(|e| ProductError::one(&shown, e))?;
    let product = Product::from_yaml(&text, &shown)?;
    if let Some(profile) = profile
        && let Ok(catalog) = Catalog::embedded()
        && let Some(problem) = product.release_problem(catalog, profile)
    {
        return Err(ProductError::one(&shown, problem));
    }
    Ok(product)
}

/// The text of a PRODUCT.yaml, refusing anything over [`MAX_PRODUCT_BYTES`] or not UTF-8.
pub fn read_product_text(path: &Path) -> Result<String, String> {
    let file = File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_PRODUCT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > MAX_PRODUCT_BYTES {
        return Err(format!(
            "larger than {} KiB; a PRODUCT.yaml is a few lines of text",
            MAX_PRODUCT_BYTES / 1024
        ));
    }
    String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())
}

/// Names a field nobody reads, with the known field it most likely misspells.
fn unknown_field(key: &str) -> String {
    let closest = FIELDS
        .iter()
        .flat_map(|f| std::iter::once(f.name).chain(f.alias))
        .map(|name| (edit_distance(key, name), name))
        .min();
    match closest {
        Some((d, name)) if d <= 2 => format!("{key}: unknown field (did you mean {name}?)"),
        _ => {
            let names: Vec<&str> = FIELDS.iter().map(|f| f.name).collect();
            format!("{key}: unknown field (known: {})", names.join(", "))
        }
    }
}

/// Levenshtein distance over chars; field names are short.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

fn check(kind: Kind, value: &str) -> Result<(), String> {
    match kind {
        Kind::Text => check_text(value, MAX_TEXT),
        Kind::Description => check_text(value, MAX_DESCRIPTION),
        Kind::Url => check_url(value),
        Kind::Email if is_email(value) => Ok(()),
        Kind::Email => Err(format!("{value:?} is not an email address")),
        Kind::Release => check_release(value),
        Kind::Type if matches!(value, "distribution" | "hosted" | "installer") => Ok(()),
        Kind::Type => Err(format!(
            "{value:?} is not one of distribution, hosted, installer"
        )),
    }
}

fn check_text(value: &str, max: usize) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err("must not be empty".to_string());
    }
    if value.chars().any(char::is_control) {
        return Err("must be one line of text".to_string());
    }
    if value.chars().count() > max {
        return Err(format!("longer than {max} characters"));
    }
    Ok(())
}

/// `<major>.<minor>` with digits only, and a release this kfconform's catalog has profiles for.
fn check_release(value: &str) -> Result<(), String> {
    let mut parts = value.split('.');
    let ok =
        |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if !(ok(parts.next()) && ok(parts.next()) && parts.next().is_none()) {
        return Err(format!(
            "{value:?} is not a Kubeflow release like \"26.03\""
        ));
    }
    let Ok(catalog) = Catalog::embedded() else {
        return Ok(());
    };
    let mut known: Vec<&str> = catalog
        .profiles
        .iter()
        .map(|p| p.release.as_str())
        .collect();
    known.sort_unstable();
    known.dedup();
    if known.contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "{value} is not a Kubeflow release this kfconform has profiles for ({})",
            known.join(", ")
        ))
    }
}

fn check_url(value: &str) -> Result<(), String> {
    let not = || format!("{value:?} is not an http(s) URL");
    let has_scheme = value.starts_with("https://") || value.starts_with("http://");
    if !has_scheme || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(not());
    }
    let uri: http::Uri = value.parse().map_err(|_| not())?;
    match uri.host() {
        Some(h) if !h.is_empty() => Ok(()),
        _ => Err(not()),
    }
}

/// One `@`, a non-empty local part and a dotted domain, no whitespace: enough to catch a name
/// or URL pasted into the wrong field without pretending to implement RFC 5322.
fn is_email(value: &str) -> bool {
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A top-level value as written: scalar text (exactly as in the file, so `26.10` stays
/// `26.10`), nothing, or something that is not a scalar.
enum Raw {
    Text(String),
    Null,
    Other(&'static str),
}

/// The top-level mapping of a PRODUCT.yaml, key → raw value. Scalars are read as text first;
/// only when that fails (a field holds a mapping or list) is the document read again by shape,
/// so those fields are reported with the rest instead of failing the whole file.
fn parse_fields(text: &str) -> Result<BTreeMap<String, Raw>, String> {
    match serde_saphyr::from_str::<BTreeMap<String, RawField<false>>>(text) {
        Ok(map) => Ok(map.into_iter().map(|(k, v)| (k, v.0)).collect()),
        Err(first) => serde_saphyr::from_str::<BTreeMap<String, RawField<true>>>(text)
            .map(|map| map.into_iter().map(|(k, v)| (k, v.0)).collect())
            .map_err(|_| yaml_error(&first.to_string())),
    }
}

/// A [`Raw`] read as text (`BY_SHAPE` false) or by shape (true).
struct RawField<const BY_SHAPE: bool>(Raw);

impl<'de, const BY_SHAPE: bool> Deserialize<'de> for RawField<BY_SHAPE> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_option(RawVisitor::<BY_SHAPE>).map(RawField)
    }
}

struct RawVisitor<const BY_SHAPE: bool>;

impl<'de, const BY_SHAPE: bool> Visitor<'de> for RawVisitor<BY_SHAPE> {
    type Value = Raw;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a line of text")
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
        if BY_SHAPE {
            d.deserialize_any(self)
        } else {
            d.deserialize_str(self)
        }
    }
    fn visit_none<E: de::Error>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Raw, E> {
        Ok(Raw::Text(v.to_string()))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Raw, E> {
        Ok(Raw::Text(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Raw, E> {
        Ok(Raw::Text(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Raw, E> {
        Ok(Raw::Text(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Raw, E> {
        Ok(Raw::Text(v.to_string()))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Raw::Other("a mapping"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Raw::Other("a list"))
    }
}

/// The parser's first line says where and what; the source snippet after it does not fit on
/// one line.
pub(crate) fn yaml_error(e: &str) -> String {
    let first = e
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or(e);
    let first = first.strip_prefix("error: ").unwrap_or(first);
    first.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_urls_and_emails() {
        assert!(check_release("26.03").is_ok());
        for bad in ["", "26", "v26.03", "26.03.1", "26.", ".03", "26.x"] {
            assert!(
                check_release(bad)
                    .unwrap_err()
                    .contains("not a Kubeflow release like"),
                "{bad}"
            );
        }
        assert!(
            check_release("1.10")
                .unwrap_err()
                .contains("has profiles for (26.03)")
        );
        for ok in ["https://example.com/docs", "http://example.com"] {
            assert!(check_url(ok).is_ok(), "{ok}");
        }
        for bad in ["https://", "ftp://x", "https://a b", "example.com"] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
        assert!(is_email("conformance@example.com"));
        for bad in [
            "",
            "a",
            "a@b",
            "@example.com",
            "a@@example.com",
            "a b@example.com",
            "a@.com",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
    }

    #[test]
    fn misspelt_fields_are_named_with_their_likely_meaning() {
        assert_eq!(edit_distance("vendr", "vendor"), 1);
        assert_eq!(
            unknown_field("websit_url"),
            "websit_url: unknown field (did you mean website_url?)"
        );
        assert!(unknown_field("colour").contains("(known: vendor, name,"));
    }
}
