//! Guards on the shape of the code: which crate may depend on which, and how long a function
//! may grow.

use std::path::{Path, PathBuf};
use std::process::Command;

use proc_macro2::Span;
use syn::spanned::Spanned as _;
use syn::visit::Visit;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The packages `package` depends on through normal dependencies (not dev or build ones),
/// itself included, as `cargo tree` lists them: one `name version (source)` line each.
fn normal_dependencies(package: &str) -> Vec<String> {
    // The cargo that runs the tests; `cargo tree` reads the lock file and builds nothing, so
    // CARGO_TARGET_DIR does not matter, and offline it needs only what the build fetched.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(["tree", "-e", "normal", "-p", package])
        .args(["--prefix", "none", "--locked", "--offline"])
        .current_dir(ROOT)
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree -p {package} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Asserts that none of `forbidden` is among `package`'s normal dependencies.
fn assert_independent(package: &str, forbidden: &[&str]) {
    let deps = normal_dependencies(package);
    assert!(
        deps.first()
            .is_some_and(|l| l.split_whitespace().next() == Some(package)),
        "cargo tree -p {package} does not start with the package: {deps:#?}"
    );
    let bad: Vec<&String> = deps
        .iter()
        .filter(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|name| forbidden.contains(&name))
        })
        .collect();
    assert!(
        bad.is_empty(),
        "{package} must not depend on {forbidden:?}, but cargo tree -e normal lists {bad:#?}"
    );
}

#[test]
fn suite_crate_does_not_depend_on_the_emulator() {
    // The suite runs against any cluster; the emulator is one, and only the binary and the
    // tests bring the two together.
    assert_independent("kfconform-suite", &["kfconform-emulator"]);
    assert_independent(
        "kfconform-probe",
        &["kfconform-suite", "kfconform-emulator"],
    );
    assert_independent(
        "kfconform-core",
        &["kfconform-suite", "kfconform-emulator", "kfconform-probe"],
    );
}

/// Functions allowed to be longer: data tables, whose length is the data's, not logic's.
/// (path from the workspace root, function name)
const LONG_TABLES: &[(&str, &str)] = &[
    // One entry per built-in kind the emulator serves.
    ("crates/emulator/src/registry.rs", "builtins"),
];

const MAX_FUNCTION_LINES: usize = 150;

/// Every `.rs` file under `dir`, recursively, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|x| x == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Collects each function's name, first line and body length in lines.
#[derive(Default)]
struct Functions {
    /// The type of the `impl` being visited, to name methods `Type::method`.
    self_ty: Option<String>,
    found: Vec<(String, usize, usize)>,
}

impl Functions {
    fn add(&mut self, name: String, start: Span, body: Span) {
        let lines = body.end().line - body.start().line + 1;
        self.found.push((name, start.start().line, lines));
    }

    fn qualified(&self, ident: &syn::Ident) -> String {
        match &self.self_ty {
            Some(ty) => format!("{ty}::{ident}"),
            None => ident.to_string(),
        }
    }
}

impl<'ast> Visit<'ast> for Functions {
    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        self.add(f.sig.ident.to_string(), f.sig.span(), body(&f.block));
        // Functions nested in this one are named on their own.
        let outer = self.self_ty.take();
        syn::visit::visit_item_fn(self, f);
        self.self_ty = outer;
    }

    fn visit_item_impl(&mut self, i: &'ast syn::ItemImpl) {
        let outer = self.self_ty.replace(type_name(&i.self_ty));
        syn::visit::visit_item_impl(self, i);
        self.self_ty = outer;
    }

    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        self.add(self.qualified(&f.sig.ident), f.sig.span(), body(&f.block));
        syn::visit::visit_impl_item_fn(self, f);
    }

    fn visit_item_trait(&mut self, t: &'ast syn::ItemTrait) {
        let outer = self.self_ty.replace(t.ident.to_string());
        syn::visit::visit_item_trait(self, t);
        self.self_ty = outer;
    }

    fn visit_trait_item_fn(&mut self, f: &'ast syn::TraitItemFn) {
        if let Some(block) = &f.default {
            self.add(self.qualified(&f.sig.ident), f.sig.span(), body(block));
        }
        syn::visit::visit_trait_item_fn(self, f);
    }
}

/// A function body's span, from its `{` to its `}`.
fn body(block: &syn::Block) -> Span {
    block.brace_token.span.join()
}

/// The last path segment of an impl's self type (`Store` for `impl<T> crate::Store<T>`).
fn type_name(ty: &syn::Type) -> String {
    match ty {
        syn::Type::Path(p) => p
            .path
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .unwrap_or_default(),
        syn::Type::Reference(r) => type_name(&r.elem),
        _ => "_".to_string(),
    }
}

#[test]
fn no_function_over_150_lines() {
    let root = Path::new(ROOT);
    let mut dirs = vec![root.join("src")];
    let mut crates: Vec<PathBuf> = std::fs::read_dir(root.join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path().join("src"))
        .filter(|p| p.is_dir())
        .collect();
    crates.sort();
    dirs.extend(crates);

    let mut too_long = Vec::new();
    let mut files = 0;
    for path in dirs.iter().flat_map(|d| rust_files(d)) {
        files += 1;
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let file = syn::parse_file(&text).unwrap_or_else(|e| {
            let at = e.span().start();
            panic!("{rel}:{}:{}: does not parse: {e}", at.line, at.column + 1)
        });
        let mut fns = Functions::default();
        fns.visit_file(&file);
        for (name, line, lines) in fns.found {
            let allowed = LONG_TABLES.contains(&(rel.as_str(), name.as_str()));
            if lines > MAX_FUNCTION_LINES && !allowed {
                too_long.push(format!("{rel}:{line} {name} ({lines} lines)"));
            }
        }
    }
    assert!(files > 0, "no Rust files under {}", root.display());
    assert!(
        too_long.is_empty(),
        "functions whose body spans more than {MAX_FUNCTION_LINES} lines (split them, or list a \
         data table in LONG_TABLES):\n{}",
        too_long.join("\n")
    );
}
