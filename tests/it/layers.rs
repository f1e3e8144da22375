//! The shape of `src/`, read with syn: imports only point down the layer list (ARCHITECTURE.md,
//! "Layers"), no handwritten file grows past 800 lines of non-test code, and wire payloads are
//! never built by deserializing JSON into the contract's generated types outside `src/contract/`
//! (they are built as structs, so a contract change the code does not follow fails to compile).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

/// The layers, top first. A module may import only modules strictly below it.
const LAYERS: &[&str] = &[
    "cli",
    "orchestrator_api",
    "upgrade",
    "app",
    "mission",
    "status",
    "identity",
    "events",
    "queue",
    "saas",
    "home",
    "repo",
    "contract",
];

const MAX_NON_TEST_LINES: usize = 800;

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|m| *m == module)
}

fn src_files() -> Vec<PathBuf> {
    let mut out = Vec::new();
    super::support::rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
    out.sort();
    out
}

fn rel(path: &Path) -> String {
    path.strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// The top-level module a file of `src/` belongs to (`None` for lib.rs and main.rs).
fn module_of(path: &Path) -> Option<String> {
    let rel = path
        .strip_prefix(Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
        .unwrap();
    let first = rel.components().next()?.as_os_str().to_string_lossy();
    let name = first.trim_end_matches(".rs");
    (name != "lib" && name != "main").then(|| name.to_owned())
}

/// Every top-level module a file names through `crate::…` (in `use` trees and in paths).
#[derive(Default)]
struct CrateRefs {
    modules: BTreeSet<String>,
}

impl CrateRefs {
    fn tree(&mut self, tree: &syn::UseTree, under_crate: bool) {
        match tree {
            syn::UseTree::Path(p) if !under_crate && p.ident == "crate" => self.tree(&p.tree, true),
            syn::UseTree::Path(p) if under_crate => {
                self.modules.insert(p.ident.to_string());
            }
            syn::UseTree::Name(n) if under_crate => {
                self.modules.insert(n.ident.to_string());
            }
            syn::UseTree::Rename(r) if under_crate => {
                self.modules.insert(r.ident.to_string());
            }
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    self.tree(t, under_crate);
                }
            }
            _ => {}
        }
    }
}

impl<'ast> Visit<'ast> for CrateRefs {
    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        self.tree(&u.tree, false);
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        let mut segments = p.segments.iter();
        if segments.next().is_some_and(|s| s.ident == "crate")
            && let Some(next) = segments.next()
        {
            self.modules.insert(next.ident.to_string());
        }
        syn::visit::visit_path(self, p);
    }
}

/// Violations of the layer rule in one file's source.
fn layer_violations(module: &str, source: &str) -> Vec<String> {
    let file = syn::parse_file(source).unwrap();
    let mut refs = CrateRefs::default();
    refs.visit_file(&file);
    let Some(own) = rank(module) else {
        return vec![format!("module `{module}` is not in the layer list")];
    };
    refs.modules
        .iter()
        .filter(|m| *m != module)
        .filter_map(|m| match rank(m) {
            Some(r) if r > own => None,
            Some(_) => Some(format!("{module} imports `{m}`, which is not below it")),
            None => Some(format!(
                "{module} imports `{m}`, which is not in the layer list"
            )),
        })
        .collect()
}

#[test]
fn imports_only_point_down() {
    let mut problems = Vec::new();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in src_files() {
        let Some(module) = module_of(&path) else {
            continue;
        };
        let source = std::fs::read_to_string(&path).unwrap();
        for v in layer_violations(&module, &source) {
            problems.push(format!("{}: {v}", rel(&path)));
        }
        let mut refs = CrateRefs::default();
        refs.visit_file(&syn::parse_file(&source).unwrap());
        edges
            .entry(module.clone())
            .or_default()
            .extend(refs.modules.into_iter().filter(|m| *m != module));
    }
    assert!(
        problems.is_empty(),
        "upward imports:\n{}",
        problems.join("\n")
    );
    // Every module of src/ is in the list, and the list names no module that does not exist.
    let modules: BTreeSet<String> = src_files().iter().filter_map(|p| module_of(p)).collect();
    let listed: BTreeSet<String> = LAYERS.iter().map(|s| s.to_string()).collect();
    assert_eq!(modules, listed);
    eprintln!("edges: {edges:?}");
}

#[test]
fn the_layer_check_catches_an_upward_import() {
    assert!(layer_violations("events", "use crate::queue::Queue;").is_empty());
    assert_eq!(
        layer_violations("events", "use crate::{contract, mission::MissionMeta};"),
        ["events imports `mission`, which is not below it"]
    );
    assert_eq!(
        layer_violations(
            "saas",
            "fn f() { let _ = crate::app::outbox::Outbox::new; }"
        ),
        ["saas imports `app`, which is not below it"]
    );
    // Doc comments are not imports.
    assert!(layer_violations("repo", "/// see [`crate::cli`]\nfn f() {}").is_empty());
}

/// Lines of a file before its first `#[cfg(test)]` (test modules and test files are exempt).
fn non_test_lines(path: &Path, source: &str) -> usize {
    let name = path.file_name().unwrap().to_string_lossy();
    if name == "tests.rs" || name.ends_with("_tests.rs") {
        return 0;
    }
    source
        .lines()
        .take_while(|l| l.trim() != "#[cfg(test)]")
        .count()
}

#[test]
fn no_handwritten_file_is_too_long() {
    let long: Vec<String> = src_files()
        .iter()
        .filter_map(|p| {
            let n = non_test_lines(p, &std::fs::read_to_string(p).unwrap());
            (n > MAX_NON_TEST_LINES).then(|| format!("{}: {n} lines", rel(p)))
        })
        .collect();
    assert!(long.is_empty(), "over {MAX_NON_TEST_LINES} lines: {long:?}");
}

/// The names a file imports from `crate::contract::types` (its generated wire types), and the
/// aliases of the module itself (`use crate::contract::types::{self as wire}`).
#[derive(Default)]
struct WireImports {
    types: BTreeSet<String>,
    module_aliases: BTreeSet<String>,
}

impl WireImports {
    fn tree(&mut self, tree: &syn::UseTree, prefix: &mut Vec<String>) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.tree(&p.tree, prefix);
                prefix.pop();
            }
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    self.tree(t, prefix);
                }
            }
            syn::UseTree::Name(n) if is_types_path(prefix) => {
                if n.ident == "self" {
                    self.module_aliases.insert("types".into());
                } else {
                    self.types.insert(n.ident.to_string());
                }
            }
            syn::UseTree::Rename(r) if is_types_path(prefix) => {
                if r.ident == "self" {
                    self.module_aliases.insert(r.rename.to_string());
                } else {
                    self.types.insert(r.rename.to_string());
                }
            }
            syn::UseTree::Glob(_) if is_types_path(prefix) => {
                self.module_aliases.insert("*".into());
            }
            _ => {}
        }
    }
}

fn is_types_path(prefix: &[String]) -> bool {
    prefix.len() >= 2
        && prefix[prefix.len() - 2] == "contract"
        && prefix[prefix.len() - 1] == "types"
}

impl<'ast> Visit<'ast> for WireImports {
    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        self.tree(&u.tree, &mut Vec::new());
    }
}

/// Finds JSON deserialized into a generated wire type: `from_value`/`from_str`/`from_slice`/
/// `from_reader` with a turbofish or a `let` annotation naming one, and `T::deserialize`.
struct JsonIntoWire<'a> {
    imports: &'a WireImports,
    hits: Vec<String>,
}

const DESERIALIZERS: &[&str] = &["from_value", "from_str", "from_slice", "from_reader"];

impl JsonIntoWire<'_> {
    fn is_wire_type(&self, ty: &syn::Type) -> bool {
        let syn::Type::Path(tp) = ty else {
            return false;
        };
        self.is_wire_path(&tp.path)
    }

    fn is_wire_path(&self, path: &syn::Path) -> bool {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        let generic_wire = path.segments.iter().any(|s| match &s.arguments {
            syn::PathArguments::AngleBracketed(args) => args.args.iter().any(|a| match a {
                syn::GenericArgument::Type(t) => self.is_wire_type(t),
                _ => false,
            }),
            _ => false,
        });
        generic_wire
            || segments
                .windows(2)
                .any(|w| w[0] == "contract" && w[1] == "types")
            || (segments.len() >= 2 && self.imports.module_aliases.contains(&segments[0]))
            || (segments.len() == 1
                && (self.imports.types.contains(&segments[0])
                    || (self.imports.module_aliases.contains("*")
                        && segments[0].starts_with(char::is_uppercase))))
    }

    fn deserializer_call(expr: &syn::Expr) -> Option<&syn::ExprPath> {
        let syn::Expr::Call(call) = expr else {
            return None;
        };
        let syn::Expr::Path(p) = &*call.func else {
            return None;
        };
        let last = p.path.segments.last()?;
        DESERIALIZERS
            .contains(&last.ident.to_string().as_str())
            .then_some(p)
    }
}

impl<'ast> Visit<'ast> for JsonIntoWire<'_> {
    fn visit_expr(&mut self, expr: &'ast syn::Expr) {
        if let Some(p) = Self::deserializer_call(expr)
            && let Some(last) = p.path.segments.last()
            && let syn::PathArguments::AngleBracketed(args) = &last.arguments
            && args
                .args
                .iter()
                .any(|a| matches!(a, syn::GenericArgument::Type(t) if self.is_wire_type(t)))
        {
            self.hits.push(format!("{}::<wire type>", last.ident));
        }
        if let syn::Expr::Call(call) = expr
            && let syn::Expr::Path(p) = &*call.func
            && p.path.segments.len() >= 2
            && p.path
                .segments
                .last()
                .is_some_and(|s| s.ident == "deserialize")
        {
            let mut ty = p.path.clone();
            ty.segments.pop();
            ty.segments.pop_punct();
            if self.is_wire_path(&ty) {
                self.hits.push("<wire type>::deserialize".into());
            }
        }
        syn::visit::visit_expr(self, expr);
    }

    fn visit_local(&mut self, local: &'ast syn::Local) {
        if let syn::Pat::Type(pt) = &local.pat
            && self.is_wire_type(&pt.ty)
            && let Some(init) = &local.init
        {
            let mut e = &*init.expr;
            // Look through `?`, `.map_err(..)`, `.unwrap_or(..)` and friends.
            loop {
                match e {
                    syn::Expr::Try(t) => e = &t.expr,
                    syn::Expr::MethodCall(m) => e = &m.receiver,
                    _ => break,
                }
            }
            if Self::deserializer_call(e).is_some() {
                self.hits.push("let <wire type> = from_*(..)".into());
            }
        }
        syn::visit::visit_local(self, local);
    }
}

fn json_into_wire(source: &str) -> Vec<String> {
    let file = syn::parse_file(source).unwrap();
    let mut imports = WireImports::default();
    imports.visit_file(&file);
    let mut finder = JsonIntoWire {
        imports: &imports,
        hits: Vec::new(),
    };
    finder.visit_file(&file);
    finder.hits
}

#[test]
fn wire_payloads_are_built_as_structs_outside_the_contract_module() {
    let mut hits = Vec::new();
    for path in src_files() {
        if rel(&path).starts_with("src/contract/") {
            continue;
        }
        for hit in json_into_wire(&std::fs::read_to_string(&path).unwrap()) {
            hits.push(format!("{}: {hit}", rel(&path)));
        }
    }
    assert!(
        hits.is_empty(),
        "JSON deserialized into generated wire types (build the struct instead):\n{}",
        hits.join("\n")
    );
}

#[test]
fn the_wire_check_catches_json_into_a_generated_type() {
    let caught = [
        "use crate::contract::types::StatusTransitionPayload;\n\
         fn f(v: serde_json::Value) { let _ = serde_json::from_value::<StatusTransitionPayload>(v); }",
        "use crate::contract::types::{self as wire};\n\
         fn f(v: serde_json::Value) -> Option<()> { let _p: wire::Envelope = serde_json::from_value(v).ok()?; None }",
        "fn f(s: &str) { let _ = serde_json::from_str::<crate::contract::types::Envelope>(s); }",
        "use crate::contract::types::Envelope;\nfn f(s: &str) { let _ = serde_json::from_str::<Vec<Envelope>>(s); }",
        "use crate::contract::types::Lane;\nfn f(d: D) { let _ = Lane::deserialize(d); }",
    ];
    for source in caught {
        assert_eq!(json_into_wire(source).len(), 1, "{source}");
    }
    // A domain type of the same name is fine, and so is untyped JSON.
    let fine = [
        "use crate::status::Lane;\nfn f(s: &str) { let _ = serde_json::from_str::<Lane>(s); }",
        "fn f(s: &str) { let _ = serde_json::from_str::<serde_json::Value>(s); }",
    ];
    for source in fine {
        assert!(json_into_wire(source).is_empty(), "{source}");
    }
}

#[test]
fn the_runtime_refuses_exactly_the_keys_upgrade_rewrites() {
    let mut runtime: Vec<&str> = spec_kitty::mission::legacy_keys::all().collect();
    runtime.sort_unstable();
    let mut upgrade: Vec<&str> = spec_kitty::upgrade::LEGACY_META_KEYS.to_vec();
    upgrade.sort_unstable();
    assert_eq!(runtime, upgrade);
}
