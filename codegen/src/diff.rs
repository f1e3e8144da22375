//! `regen diff OLD NEW`: what a contract change means for this CLI.
//!
//! Both sides are loaded with codegen's own loaders and compiled into a [`Model`], so the diff
//! compares meaning, not text: reordering a file, turning a `const` into a one-value `enum` or
//! moving a definition into `common.schema.json` changes nothing here. Every change gets a
//! [`Verdict`] for this CLI as a *producer* of the data:
//!
//! * **breaking**: something the CLI sends today may become invalid (a newly required field, a
//!   field removed from a closed object, a new forbidden field or value, a narrowed enum, a tighter
//!   constraint, a removed event type). The CLI's code must change before it ships this contract.
//! * **additive**: everything sent today stays valid (a new optional field, a new event type, a
//!   widened enum, a looser constraint).
//! * **cosmetic**: which documents are valid does not change (descriptions, ordering, labels,
//!   generated type names).
//!
//! When the verdict cannot be proven (a changed `pattern`, a changed type), it is breaking.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::model::{self, Field, Model, SchemaModel, SurfaceModel, display_path};
use crate::shape::Rule;

/// How a change affects this CLI as a producer. Ordered: the worst verdict is the largest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Cosmetic,
    Additive,
    Breaking,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Cosmetic => "cosmetic",
            Verdict::Additive => "additive",
            Verdict::Breaking => "BREAKING",
        })
    }
}

/// What a change is about: the contract as a whole, a gate surface, an event type, or a schema
/// that is neither a surface's nor an event's.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum Subject {
    Contract,
    Surface(String),
    Event(String),
    Schema(String),
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Contract => f.write_str("contract"),
            Subject::Surface(n) => write!(f, "surface {n}"),
            Subject::Event(n) => write!(f, "event {n}"),
            Subject::Schema(n) => write!(f, "schema {n}"),
        }
    }
}

/// The kind of a change in meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    // The contract as a whole.
    ShapeVersionChanged,
    CutoverChanged,
    LegacyNamesAdded,
    LegacyNamesRemoved,
    LaneAliasesAdded,
    LaneAliasesRemoved,
    SyncLanesChanged,
    // Gate surfaces (the shape file).
    SurfaceAdded,
    SurfaceRemoved,
    GateRequiredAdded,
    GateRequiredRemoved,
    GateForbiddenAdded,
    GateForbiddenRemoved,
    AllowedRuleAdded,
    AllowedRuleRemoved,
    AllowedValuesAdded,
    AllowedValuesRemoved,
    ForbiddenValuesAdded,
    ForbiddenValuesRemoved,
    ExactValueAdded,
    ExactValueRemoved,
    ExactValueChanged,
    RuleOrderChanged,
    // The event registry and the model rules.
    EventTypeAdded,
    EventTypeRemoved,
    PayloadTypeRenamed,
    AggregateTypesAdded,
    AggregateTypesRemoved,
    MissionScopedChanged,
    PayloadRuleAdded,
    PayloadRuleRemoved,
    PayloadRuleMessageChanged,
    // The contract's event types judged on input (not emitted by this CLI).
    ContractEventTypeAdded,
    ContractEventTypeRemoved,
    ContractPayloadChanged,
    // Schema roots.
    SchemaAdded,
    SchemaRemoved,
    SurfaceDeclarationChanged,
    // Fields.
    FieldAdded,
    FieldRemoved,
    FieldNowRequired,
    FieldNowOptional,
    NullAllowed,
    NullRefused,
    TypeChanged,
    FormatChanged,
    EnumRestricted,
    EnumLifted,
    EnumMembersAdded,
    EnumMembersRemoved,
    EnumReordered,
    ObjectClosed,
    ObjectOpened,
    GatedChanged,
    OneOfMembersAdded,
    OneOfMembersRemoved,
    OneOfReordered,
    ConstraintTightened,
    ConstraintLoosened,
    DefaultChanged,
    DescriptionChanged,
    TypeRenamed,
    FieldsReordered,
}

/// One change in meaning, with its verdict and the reason for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub subject: Subject,
    /// The field path (`payload.to_lane`, `Envelope.team_slug`), rule field or list the change is
    /// about; empty when it is about the subject itself.
    pub target: String,
    pub kind: ChangeKind,
    pub verdict: Verdict,
    /// What changed, in words (`minLength 1 -> 2`).
    pub detail: String,
    /// Why the verdict, in one line.
    pub reason: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub total: usize,
    pub breaking: usize,
    pub additive: usize,
    pub cosmetic: usize,
}

/// The whole diff: what `--json` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Where OLD and NEW came from (`directory contracts`, `git HEAD~1:contracts`).
    pub old: String,
    pub new: String,
    /// The worst verdict, `null` when nothing changed.
    pub verdict: Option<Verdict>,
    pub counts: Counts,
    pub changes: Vec<Change>,
}

impl Report {
    pub fn new(old: impl Into<String>, new: impl Into<String>, changes: Vec<Change>) -> Self {
        let count = |v| changes.iter().filter(|c| c.verdict == v).count();
        let counts = Counts {
            total: changes.len(),
            breaking: count(Verdict::Breaking),
            additive: count(Verdict::Additive),
            cosmetic: count(Verdict::Cosmetic),
        };
        Report {
            old: old.into(),
            new: new.into(),
            verdict: changes.iter().map(|c| c.verdict).max(),
            counts,
            changes,
        }
    }

    pub fn is_breaking(&self) -> bool {
        self.counts.breaking > 0
    }

    /// The human report: changes grouped by subject, a summary line last.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "contract diff\n  old: {}\n  new: {}",
            self.old, self.new
        );
        let mut subject: Option<&Subject> = None;
        for c in &self.changes {
            if subject != Some(&c.subject) {
                let _ = writeln!(out, "\n{}", c.subject);
                subject = Some(&c.subject);
            }
            let target = if c.target.is_empty() {
                String::new()
            } else {
                format!("{}: ", c.target)
            };
            let _ = writeln!(out, "  {:<8}  {target}{}", c.verdict.to_string(), c.detail);
            let _ = writeln!(out, "            because {}", c.reason);
        }
        let n = &self.counts;
        if n.total == 0 {
            let _ = writeln!(out, "\nno change in meaning");
        } else {
            let _ = writeln!(
                out,
                "\n{} change{}: {} breaking, {} additive, {} cosmetic",
                n.total,
                if n.total == 1 { "" } else { "s" },
                n.breaking,
                n.additive,
                n.cosmetic
            );
        }
        if self.is_breaking() {
            let _ = writeln!(
                out,
                "breaking: something this CLI sends today may be refused under NEW; change the code (and the tests) with the contract"
            );
        }
        out
    }
}

struct Out<'a> {
    subject: Subject,
    changes: &'a mut Vec<Change>,
}

impl Out<'_> {
    fn push(
        &mut self,
        target: impl Into<String>,
        kind: ChangeKind,
        verdict: Verdict,
        detail: impl Into<String>,
        reason: impl Into<String>,
    ) {
        self.changes.push(Change {
            subject: self.subject.clone(),
            target: target.into(),
            kind,
            verdict,
            detail: detail.into(),
            reason: reason.into(),
        });
    }
}

fn join<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> String {
    items
        .into_iter()
        .map(|s| s.as_ref().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Members of `a` not in `b`, in `a`'s order.
fn minus<'a>(a: &'a [String], b: &[String]) -> Vec<&'a str> {
    a.iter()
        .filter(|x| !b.contains(x))
        .map(String::as_str)
        .collect()
}

/// Every change in meaning from `old` to `new`, grouped by subject (contract, surfaces in shape
/// order, events by name, other schemas by title).
pub fn compare(old: &Model, new: &Model) -> Vec<Change> {
    let mut changes = Vec::new();
    contract(old, new, &mut changes);

    let mut order: Vec<Subject> = vec![Subject::Contract];
    let mut surface_names: Vec<&str> = new.surfaces.iter().map(|s| s.name.as_str()).collect();
    for s in &old.surfaces {
        if !surface_names.contains(&s.name.as_str()) {
            surface_names.push(&s.name);
        }
    }
    for name in &surface_names {
        order.push(Subject::Surface((*name).to_string()));
        let o = old.surfaces.iter().find(|s| s.name == *name);
        let n = new.surfaces.iter().find(|s| s.name == *name);
        let mut out = Out {
            subject: Subject::Surface((*name).to_string()),
            changes: &mut changes,
        };
        match (o, n) {
            (Some(o), Some(n)) => gate(o, n, &mut out),
            (None, Some(n)) => out.push(
                "",
                ChangeKind::SurfaceAdded,
                Verdict::Additive,
                format!("surface added ({} rules)", n.rules.len()),
                "nothing this CLI sends is checked against a surface until code sends through it",
            ),
            (Some(o), None) => out.push(
                "",
                ChangeKind::SurfaceRemoved,
                Verdict::Additive,
                format!("surface removed ({} rules no longer apply)", o.rules.len()),
                "fewer rules refuse less (code naming this Surface variant must change)",
            ),
            (None, None) => {}
        }
    }

    let event_names: BTreeSet<&str> = old
        .events
        .keys()
        .chain(new.events.keys())
        .map(String::as_str)
        .collect();
    for name in &event_names {
        order.push(Subject::Event((*name).to_string()));
        let mut out = Out {
            subject: Subject::Event((*name).to_string()),
            changes: &mut changes,
        };
        match (old.events.get(*name), new.events.get(*name)) {
            (Some(o), Some(n)) => {
                event(o, n, &mut out);
                if let (Some(os), Some(ns)) =
                    (old.schemas.get(&o.payload), new.schemas.get(&n.payload))
                {
                    root(os, ns, "payload", &mut out);
                }
            }
            (None, Some(n)) => out.push(
                "",
                ChangeKind::EventTypeAdded,
                Verdict::Additive,
                format!(
                    "event type added: payload {}, aggregate types [{}], mission-scoped {}",
                    n.payload,
                    join(&n.aggregate_types),
                    if n.mission_scoped { "yes" } else { "no" }
                ),
                "nothing this CLI sends today uses it; emitting it needs code",
            ),
            (Some(o), None) => out.push(
                "",
                ChangeKind::EventTypeRemoved,
                Verdict::Breaking,
                format!("event type removed (payload {})", o.payload),
                "this CLI emits it today; the registry and the envelope no longer accept it",
            ),
            (None, None) => {}
        }
    }

    for name in old
        .contract_events
        .keys()
        .chain(new.contract_events.keys())
        .collect::<BTreeSet<_>>()
    {
        let mut out = Out {
            subject: Subject::Contract,
            changes: &mut changes,
        };
        let target = format!("contract event type {name}");
        let reason = "judged on input only (contract check); nothing this CLI sends changes";
        match (old.contract_events.get(name), new.contract_events.get(name)) {
            (None, Some(p)) => out.push(
                &target,
                ChangeKind::ContractEventTypeAdded,
                Verdict::Additive,
                format!("added (payload {p})"),
                reason,
            ),
            (Some(p), None) => out.push(
                &target,
                ChangeKind::ContractEventTypeRemoved,
                Verdict::Additive,
                format!("removed (payload {p})"),
                reason,
            ),
            (Some(o), Some(n)) if o != n => out.push(
                &target,
                ChangeKind::ContractPayloadChanged,
                Verdict::Additive,
                format!("payload {o} -> {n}"),
                reason,
            ),
            _ => {}
        }
    }

    // Schema roots that are no event's payload on either side: by the surface they declare.
    let payloads: BTreeSet<&str> = old
        .events
        .values()
        .chain(new.events.values())
        .map(|e| e.payload.as_str())
        .collect();
    let titles: BTreeSet<&str> = old
        .schemas
        .keys()
        .chain(new.schemas.keys())
        .map(String::as_str)
        .filter(|t| !payloads.contains(t))
        .collect();
    let judged_only: BTreeSet<&str> = old
        .contract_events
        .values()
        .map(String::as_str)
        .filter(|t| !payloads.contains(t))
        .collect();
    for title in titles {
        let o = old.schemas.get(title);
        let n = new.schemas.get(title);
        let surface = n
            .and_then(|s| s.surface.clone())
            .or_else(|| o.and_then(|s| s.surface.clone()));
        let subject = match surface {
            Some(s) => Subject::Surface(s),
            None => Subject::Schema(title.to_string()),
        };
        if !order.contains(&subject) {
            order.push(subject.clone());
        }
        let mut out = Out {
            subject,
            changes: &mut changes,
        };
        match (o, n) {
            (Some(o), Some(n)) => root(o, n, title, &mut out),
            (None, Some(n)) => out.push(
                title,
                ChangeKind::SchemaAdded,
                Verdict::Additive,
                format!("schema added ({})", n.file),
                "a new type; nothing this CLI sends today uses it",
            ),
            (Some(o), None) if judged_only.contains(title) => out.push(
                title,
                ChangeKind::SchemaRemoved,
                Verdict::Additive,
                format!("schema removed ({})", o.file),
                "a payload judged on input only; this CLI never builds it",
            ),
            (Some(o), None) => out.push(
                title,
                ChangeKind::SchemaRemoved,
                Verdict::Breaking,
                format!("schema removed ({})", o.file),
                "this CLI builds this type today; its generated type disappears",
            ),
            (None, None) => {}
        }
    }
    let rank = |s: &Subject| order.iter().position(|o| o == s).unwrap_or(order.len());
    changes.sort_by_key(|c| rank(&c.subject));
    changes
}

fn contract(old: &Model, new: &Model, changes: &mut Vec<Change>) {
    let mut out = Out {
        subject: Subject::Contract,
        changes,
    };
    if old.shape_version != new.shape_version {
        out.push(
            "shape schema_version",
            ChangeKind::ShapeVersionChanged,
            Verdict::Cosmetic,
            format!("\"{}\" -> \"{}\"", old.shape_version, new.shape_version),
            "a label; the envelope's schema_version rule and const carry what is enforced (reported under surface envelope)",
        );
    }
    let (oc, nc) = (&old.cutover, &new.cutover);
    if oc.contract_version != nc.contract_version {
        out.push(
            "cutover contract version",
            ChangeKind::CutoverChanged,
            Verdict::Breaking,
            format!("\"{}\" -> \"{}\"", oc.contract_version, nc.contract_version),
            format!(
                "every envelope this CLI sends today says \"{}\"; the validators now require \"{}\"",
                oc.contract_version, nc.contract_version
            ),
        );
    }
    if oc.accepted_major != nc.accepted_major {
        out.push(
            "cutover accepted major",
            ChangeKind::CutoverChanged,
            Verdict::Breaking,
            format!("{} -> {}", oc.accepted_major, nc.accepted_major),
            "the versions this CLI sends today fall outside the accepted major",
        );
    }
    if oc.signal_field != nc.signal_field {
        out.push(
            "cutover signal field",
            ChangeKind::CutoverChanged,
            Verdict::Breaking,
            format!("{} -> {}", oc.signal_field, nc.signal_field),
            "this CLI signals the contract version in the old field",
        );
    }
    for (what, o, n) in [
        (
            "forbidden legacy keys",
            &oc.forbidden_legacy_keys,
            &nc.forbidden_legacy_keys,
        ),
        (
            "forbidden legacy event names",
            &oc.forbidden_legacy_event_names,
            &nc.forbidden_legacy_event_names,
        ),
        (
            "forbidden legacy aggregate names",
            &oc.forbidden_legacy_aggregate_names,
            &nc.forbidden_legacy_aggregate_names,
        ),
    ] {
        let added = minus(n, o);
        if !added.is_empty() {
            out.push(
                what,
                ChangeKind::LegacyNamesAdded,
                Verdict::Breaking,
                format!("added {}", join(&added)),
                "now refused everywhere in what this CLI sends",
            );
        }
        let removed = minus(o, n);
        if !removed.is_empty() {
            out.push(
                what,
                ChangeKind::LegacyNamesRemoved,
                Verdict::Additive,
                format!("removed {}", join(&removed)),
                "no longer refused; nothing sent today is affected",
            );
        }
    }
    let (ol, nl) = (&old.lane_aliases, &new.lane_aliases);
    let pairs = |m: &BTreeMap<String, String>| -> Vec<String> {
        m.iter().map(|(a, b)| format!("{a} -> {b}")).collect()
    };
    for (what, o, n) in [
        ("lane aliases", pairs(&ol.aliases), pairs(&nl.aliases)),
        (
            "lane alias event types",
            ol.event_types.clone(),
            nl.event_types.clone(),
        ),
        ("lane alias fields", ol.fields.clone(), nl.fields.clone()),
    ] {
        let removed = minus(&o, &n);
        if !removed.is_empty() {
            out.push(
                what,
                ChangeKind::LaneAliasesRemoved,
                Verdict::Breaking,
                format!("removed {}", join(&removed)),
                "a lane value accepted through the alias today is no longer rewritten",
            );
        }
        let added = minus(&n, &o);
        if !added.is_empty() {
            out.push(
                what,
                ChangeKind::LaneAliasesAdded,
                Verdict::Additive,
                format!("added {}", join(&added)),
                "one more spelling is accepted; nothing sent today is affected",
            );
        }
    }
    let versions: BTreeSet<&String> = old.sync_lanes.keys().chain(new.sync_lanes.keys()).collect();
    for version in versions {
        let (o, n) = (
            old.sync_lanes.get(version).map(pairs).unwrap_or_default(),
            new.sync_lanes.get(version).map(pairs).unwrap_or_default(),
        );
        if o != n {
            out.push(
                format!("sync lanes {version}"),
                ChangeKind::SyncLanesChanged,
                Verdict::Additive,
                format!(
                    "removed {}; added {}",
                    join(minus(&o, &n)),
                    join(minus(&n, &o))
                ),
                "judged on input only (contract check); nothing this CLI sends changes",
            );
        }
    }
}

/// A surface's rules as sets, so reordering is not a change in meaning.
#[derive(Default, PartialEq)]
struct RuleSets {
    required: Vec<String>,
    forbidden: Vec<String>,
    allowed: BTreeMap<String, Vec<String>>,
    forbidden_values: BTreeMap<String, Vec<String>>,
    equals: BTreeMap<String, String>,
}

impl RuleSets {
    fn of(rules: &[Rule]) -> Self {
        let mut s = RuleSets::default();
        for r in rules {
            match r {
                Rule::Required(f) if !s.required.contains(f) => s.required.push(f.clone()),
                Rule::Forbidden(f) if !s.forbidden.contains(f) => s.forbidden.push(f.clone()),
                Rule::Required(_) | Rule::Forbidden(_) => {}
                Rule::Allowed { field, values } => {
                    // Two allowed lists on one field: both apply, so their intersection is allowed.
                    let entry = s
                        .allowed
                        .entry(field.clone())
                        .or_insert_with(|| values.clone());
                    entry.retain(|v| values.contains(v));
                }
                Rule::ForbiddenValue { field, values } => {
                    let entry = s.forbidden_values.entry(field.clone()).or_default();
                    for v in values {
                        if !entry.contains(v) {
                            entry.push(v.clone());
                        }
                    }
                }
                Rule::Equals { field, value } => {
                    s.equals.insert(field.clone(), value.clone());
                }
            }
        }
        s
    }

    fn sorted(&self) -> Self {
        let sort = |v: &Vec<String>| {
            let mut v = v.clone();
            v.sort();
            v
        };
        RuleSets {
            required: sort(&self.required),
            forbidden: sort(&self.forbidden),
            allowed: self
                .allowed
                .iter()
                .map(|(k, v)| (k.clone(), sort(v)))
                .collect(),
            forbidden_values: self
                .forbidden_values
                .iter()
                .map(|(k, v)| (k.clone(), sort(v)))
                .collect(),
            equals: self.equals.clone(),
        }
    }
}

fn gate(old: &SurfaceModel, new: &SurfaceModel, out: &mut Out<'_>) {
    let o = RuleSets::of(&old.rules);
    let n = RuleSets::of(&new.rules);
    let before = out.changes.len();
    for f in minus(&n.required, &o.required) {
        out.push(
            f,
            ChangeKind::GateRequiredAdded,
            Verdict::Breaking,
            "gate now requires the field",
            "the gate refuses a document without it; OLD did not require it, so the CLI may not send it",
        );
    }
    for f in minus(&o.required, &n.required) {
        out.push(
            f,
            ChangeKind::GateRequiredRemoved,
            Verdict::Additive,
            "gate no longer requires the field",
            "the gate refuses less",
        );
    }
    for f in minus(&n.forbidden, &o.forbidden) {
        out.push(
            f,
            ChangeKind::GateForbiddenAdded,
            Verdict::Breaking,
            "gate now forbids the field",
            "the gate refuses a document carrying it, which OLD allowed",
        );
    }
    for f in minus(&o.forbidden, &n.forbidden) {
        out.push(
            f,
            ChangeKind::GateForbiddenRemoved,
            Verdict::Additive,
            "gate no longer forbids the field",
            "the gate refuses less",
        );
    }
    let fields: BTreeSet<&String> = o.allowed.keys().chain(n.allowed.keys()).collect();
    for field in fields {
        match (o.allowed.get(field), n.allowed.get(field)) {
            (None, Some(values)) => out.push(
                field.as_str(),
                ChangeKind::AllowedRuleAdded,
                Verdict::Breaking,
                format!("values now restricted to [{}]", join(values)),
                "any other value the CLI sends is refused",
            ),
            (Some(values), None) => out.push(
                field.as_str(),
                ChangeKind::AllowedRuleRemoved,
                Verdict::Additive,
                format!("values no longer restricted (were [{}])", join(values)),
                "the gate refuses less",
            ),
            (Some(ov), Some(nv)) => {
                let removed = minus(ov, nv);
                if !removed.is_empty() {
                    out.push(
                        field.as_str(),
                        ChangeKind::AllowedValuesRemoved,
                        Verdict::Breaking,
                        format!("no longer allowed: {}", join(&removed)),
                        "the CLI may send these values today",
                    );
                }
                let added = minus(nv, ov);
                if !added.is_empty() {
                    out.push(
                        field.as_str(),
                        ChangeKind::AllowedValuesAdded,
                        Verdict::Additive,
                        format!("now also allowed: {}", join(&added)),
                        "more values are accepted; nothing sent today is affected",
                    );
                }
            }
            (None, None) => {}
        }
    }
    let empty = Vec::new();
    let fields: BTreeSet<&String> = o
        .forbidden_values
        .keys()
        .chain(n.forbidden_values.keys())
        .collect();
    for field in fields {
        let ov = o.forbidden_values.get(field).unwrap_or(&empty);
        let nv = n.forbidden_values.get(field).unwrap_or(&empty);
        let added = minus(nv, ov);
        if !added.is_empty() {
            out.push(
                field.as_str(),
                ChangeKind::ForbiddenValuesAdded,
                Verdict::Breaking,
                format!("now forbidden values: {}", join(&added)),
                "a value OLD accepted is refused",
            );
        }
        let removed = minus(ov, nv);
        if !removed.is_empty() {
            out.push(
                field.as_str(),
                ChangeKind::ForbiddenValuesRemoved,
                Verdict::Additive,
                format!("no longer forbidden values: {}", join(&removed)),
                "the gate refuses less",
            );
        }
    }
    let fields: BTreeSet<&String> = o.equals.keys().chain(n.equals.keys()).collect();
    for field in fields {
        match (o.equals.get(field), n.equals.get(field)) {
            (None, Some(v)) => out.push(
                field.as_str(),
                ChangeKind::ExactValueAdded,
                Verdict::Breaking,
                format!("must now equal \"{v}\""),
                "any other value the CLI sends is refused",
            ),
            (Some(v), None) => out.push(
                field.as_str(),
                ChangeKind::ExactValueRemoved,
                Verdict::Additive,
                format!("no longer fixed (was \"{v}\")"),
                "the gate refuses less",
            ),
            (Some(ov), Some(nv)) if ov != nv => out.push(
                field.as_str(),
                ChangeKind::ExactValueChanged,
                Verdict::Breaking,
                format!("exact value \"{ov}\" -> \"{nv}\""),
                format!("the CLI sends \"{ov}\" today"),
            ),
            _ => {}
        }
    }
    if out.changes.len() == before && old.rules != new.rules {
        let verdict = Verdict::Cosmetic;
        let detail = if o.sorted() == n.sorted() {
            "the same rules in another order"
        } else {
            "the same rules, written differently"
        };
        out.push(
            "",
            ChangeKind::RuleOrderChanged,
            verdict,
            detail,
            "the gate accepts and refuses the same documents (the first failure it reports may differ)",
        );
    }
}

fn event(old: &model::EventModel, new: &model::EventModel, out: &mut Out<'_>) {
    if old.payload != new.payload {
        out.push(
            "payload type",
            ChangeKind::PayloadTypeRenamed,
            Verdict::Cosmetic,
            format!("{} -> {}", old.payload, new.payload),
            "a generated type name; the payloads' fields are compared below (code naming the type must follow)",
        );
    }
    let removed = minus(&old.aggregate_types, &new.aggregate_types);
    if !removed.is_empty() {
        out.push(
            "aggregate types",
            ChangeKind::AggregateTypesRemoved,
            Verdict::Breaking,
            format!("removed {}", join(&removed)),
            "the CLI may send this event with these aggregate types today",
        );
    }
    let added = minus(&new.aggregate_types, &old.aggregate_types);
    if !added.is_empty() {
        out.push(
            "aggregate types",
            ChangeKind::AggregateTypesAdded,
            Verdict::Additive,
            format!("added {}", join(&added)),
            "more aggregate types are accepted; nothing sent today is affected",
        );
    }
    if old.mission_scoped != new.mission_scoped {
        let (verdict, detail, reason) = if new.mission_scoped {
            (
                Verdict::Breaking,
                "now mission-scoped",
                "its payload is now also checked against the payload.mission_scoped surface",
            )
        } else {
            (
                Verdict::Additive,
                "no longer mission-scoped",
                "its payload is no longer checked against the payload.mission_scoped surface",
            )
        };
        out.push(
            "",
            ChangeKind::MissionScopedChanged,
            verdict,
            detail,
            reason,
        );
    }
    let key = |r: &model::PayloadRule| (r.when.clone(), r.require.clone());
    for r in &new.rules {
        match old.rules.iter().find(|o| key(o) == key(r)) {
            None => out.push(
                "payload rule",
                ChangeKind::PayloadRuleAdded,
                Verdict::Breaking,
                format!("when {} require {}", r.when, r.require),
                "a payload the CLI sends today may not satisfy it",
            ),
            Some(o) if o.message != r.message => out.push(
                "payload rule",
                ChangeKind::PayloadRuleMessageChanged,
                Verdict::Cosmetic,
                format!(
                    "when {} require {}: message \"{}\" -> \"{}\"",
                    r.when, r.require, o.message, r.message
                ),
                "the same payloads pass; only the refusal's wording changes",
            ),
            Some(_) => {}
        }
    }
    for r in &old.rules {
        if !new.rules.iter().any(|n| key(n) == key(r)) {
            out.push(
                "payload rule",
                ChangeKind::PayloadRuleRemoved,
                Verdict::Additive,
                format!("when {} require {}", r.when, r.require),
                "the validators refuse less",
            );
        }
    }
}

/// Compare two versions of one schema root; `prefix` is how its paths are shown.
fn root(old: &SchemaModel, new: &SchemaModel, prefix: &str, out: &mut Out<'_>) {
    if old.surface != new.surface {
        let show = |s: &Option<String>| s.clone().unwrap_or_else(|| "(none)".into());
        let verdict = match &new.surface {
            None => Verdict::Additive,
            Some(_) => Verdict::Breaking,
        };
        let reason = match &new.surface {
            None => "the gate no longer checks this type's documents".to_string(),
            Some(s) => format!("this type's documents are now checked by the gate of surface {s}"),
        };
        out.push(
            prefix,
            ChangeKind::SurfaceDeclarationChanged,
            verdict,
            format!(
                "declared surface {} -> {}",
                show(&old.surface),
                show(&new.surface)
            ),
            reason,
        );
    }
    fields(&old.fields, &new.fields, prefix, out);
}

fn fields(old: &[Field], new: &[Field], prefix: &str, out: &mut Out<'_>) {
    let o: BTreeMap<&str, &Field> = old.iter().map(|f| (f.path.as_str(), f)).collect();
    let n: BTreeMap<&str, &Field> = new.iter().map(|f| (f.path.as_str(), f)).collect();
    // Report an added or removed property only where its parent object is on both sides with
    // the same type (otherwise the parent's own change says it).
    let reportable = |path: &str| {
        if path.ends_with("[]") || path.ends_with("{}") {
            return false;
        }
        let Some(parent) = model::parent(path) else {
            return false;
        };
        match (o.get(parent), n.get(parent)) {
            (Some(a), Some(b)) => a.ty == b.ty && a.ty == "object",
            _ => false,
        }
    };
    for f in new {
        match o.get(f.path.as_str()) {
            Some(of) => field(of, f, &display_path(prefix, &f.path), out),
            None if reportable(&f.path) => {
                let shown = display_path(prefix, &f.path);
                if f.required {
                    out.push(
                        shown,
                        ChangeKind::FieldAdded,
                        Verdict::Breaking,
                        format!("field added, required ({})", crate::summary::field_text(f)),
                        "nothing the CLI sends today carries it",
                    );
                } else {
                    out.push(
                        shown,
                        ChangeKind::FieldAdded,
                        Verdict::Additive,
                        format!("field added, optional ({})", crate::summary::field_text(f)),
                        "a new optional field; what the CLI sends today stays valid",
                    );
                }
            }
            None => {}
        }
    }
    for f in old {
        if n.contains_key(f.path.as_str()) || !reportable(&f.path) {
            continue;
        }
        let shown = display_path(prefix, &f.path);
        let parent_closed = model::parent(&f.path)
            .and_then(|p| n.get(p))
            .and_then(|p| p.closed)
            .unwrap_or(false);
        if parent_closed {
            out.push(
                shown,
                ChangeKind::FieldRemoved,
                Verdict::Breaking,
                "field removed from a closed object",
                "the CLI may send it today; the closed object now refuses it",
            );
        } else {
            out.push(
                shown,
                ChangeKind::FieldRemoved,
                Verdict::Additive,
                "field removed from an open object",
                "the open object still accepts it, no longer typed",
            );
        }
    }
    let common_old: Vec<&str> = old
        .iter()
        .map(|f| f.path.as_str())
        .filter(|p| n.contains_key(p))
        .collect();
    let common_new: Vec<&str> = new
        .iter()
        .map(|f| f.path.as_str())
        .filter(|p| o.contains_key(p))
        .collect();
    if common_old != common_new {
        out.push(
            prefix,
            ChangeKind::FieldsReordered,
            Verdict::Cosmetic,
            "properties in another order",
            "ordering changes no document's validity",
        );
    }
}

fn num(v: &serde_json::Value) -> Option<f64> {
    v.as_f64()
}

fn field(o: &Field, n: &Field, shown: &str, out: &mut Out<'_>) {
    let is_property = !o.path.is_empty() && !o.path.ends_with("[]") && !o.path.ends_with("{}");
    if is_property && o.required != n.required {
        if n.required {
            out.push(
                shown,
                ChangeKind::FieldNowRequired,
                Verdict::Breaking,
                "optional -> required",
                "the CLI may leave it out today",
            );
        } else {
            out.push(
                shown,
                ChangeKind::FieldNowOptional,
                Verdict::Additive,
                "required -> optional",
                "what the CLI sends today stays valid",
            );
        }
    }
    if o.nullable != n.nullable {
        if n.nullable {
            out.push(
                shown,
                ChangeKind::NullAllowed,
                Verdict::Additive,
                "now nullable",
                "null is accepted too; what the CLI sends today stays valid",
            );
        } else {
            out.push(
                shown,
                ChangeKind::NullRefused,
                Verdict::Breaking,
                "no longer nullable",
                "the CLI may send null today",
            );
        }
    }
    if o.ty != n.ty {
        let widening = (o.ty == "integer" && n.ty == "number") || n.ty == "any";
        out.push(
            shown,
            ChangeKind::TypeChanged,
            if widening {
                Verdict::Additive
            } else {
                Verdict::Breaking
            },
            format!("type {} -> {}", o.ty, n.ty),
            if widening {
                "every value of the old type is still accepted"
            } else {
                "the values the CLI sends today have the old type"
            },
        );
    } else {
        same_type(o, n, shown, out);
    }
    if o.default != n.default {
        let show = |d: &Option<serde_json::Value>| {
            d.as_ref()
                .map_or_else(|| "(none)".to_string(), |v| v.to_string())
        };
        out.push(
            shown,
            ChangeKind::DefaultChanged,
            Verdict::Cosmetic,
            format!("default {} -> {}", show(&o.default), show(&n.default)),
            "which documents are valid does not change (the generated types write the field)",
        );
    }
    if o.description != n.description {
        out.push(
            shown,
            ChangeKind::DescriptionChanged,
            Verdict::Cosmetic,
            "description changed",
            "documentation only",
        );
    }
    if o.type_name != n.type_name {
        let show = |t: &Option<String>| t.clone().unwrap_or_else(|| "(inline)".into());
        out.push(
            shown,
            ChangeKind::TypeRenamed,
            Verdict::Cosmetic,
            format!(
                "refers to {} -> {}",
                show(&o.type_name),
                show(&n.type_name)
            ),
            "the definition's meaning is compared field by field; only the generated type's name changes",
        );
    }
}

/// Attributes that only compare within one type.
fn same_type(o: &Field, n: &Field, shown: &str, out: &mut Out<'_>) {
    if o.format != n.format {
        let show = |f: &Option<String>| f.clone().unwrap_or_else(|| "(none)".into());
        let verdict = if n.format.is_none() {
            Verdict::Additive
        } else {
            Verdict::Breaking
        };
        out.push(
            shown,
            ChangeKind::FormatChanged,
            verdict,
            format!("format {} -> {}", show(&o.format), show(&n.format)),
            if n.format.is_none() {
                "no format is required any more"
            } else {
                "values the CLI sends today may not have the new format"
            },
        );
    }
    match (&o.values, &n.values) {
        (None, Some(v)) => out.push(
            shown,
            ChangeKind::EnumRestricted,
            Verdict::Breaking,
            format!("now restricted to [{}]", join(v)),
            "any other value the CLI sends is refused",
        ),
        (Some(v), None) => out.push(
            shown,
            ChangeKind::EnumLifted,
            Verdict::Additive,
            format!("no longer restricted (was [{}])", join(v)),
            "every value sent today stays valid",
        ),
        (Some(ov), Some(nv)) if ov.len() == 1 && nv.len() == 1 && ov != nv => out.push(
            shown,
            ChangeKind::ExactValueChanged,
            Verdict::Breaking,
            format!("constant \"{}\" -> \"{}\"", ov[0], nv[0]),
            format!("the CLI sends \"{}\" today", ov[0]),
        ),
        (Some(ov), Some(nv)) => {
            let removed = minus(ov, nv);
            if !removed.is_empty() {
                out.push(
                    shown,
                    ChangeKind::EnumMembersRemoved,
                    Verdict::Breaking,
                    format!("enum members removed: {}", join(&removed)),
                    "the CLI may send these values today",
                );
            }
            let added = minus(nv, ov);
            if !added.is_empty() {
                out.push(
                    shown,
                    ChangeKind::EnumMembersAdded,
                    Verdict::Additive,
                    format!("enum members added: {}", join(&added)),
                    "more values are accepted; nothing sent today is affected",
                );
            }
            if removed.is_empty() && added.is_empty() && ov != nv {
                out.push(
                    shown,
                    ChangeKind::EnumReordered,
                    Verdict::Cosmetic,
                    "enum members in another order",
                    "the same values are accepted",
                );
            }
        }
        (None, None) => {}
    }
    match (o.closed, n.closed) {
        (Some(true), Some(false)) => out.push(
            shown,
            ChangeKind::ObjectOpened,
            Verdict::Additive,
            "closed -> open",
            "unknown properties are accepted too",
        ),
        (Some(false), Some(true)) => out.push(
            shown,
            ChangeKind::ObjectClosed,
            Verdict::Breaking,
            "open -> closed",
            "properties the CLI may send today beyond the declared ones are refused",
        ),
        _ => {}
    }
    if o.gated != n.gated {
        let show = |g: &Option<String>| g.clone().unwrap_or_else(|| "(none)".into());
        let verdict = if n.gated.is_none() {
            Verdict::Additive
        } else {
            Verdict::Breaking
        };
        out.push(
            shown,
            ChangeKind::GatedChanged,
            verdict,
            format!("gated by {} -> {}", show(&o.gated), show(&n.gated)),
            if n.gated.is_none() {
                "no surface's gate checks it any more"
            } else {
                "another surface's rules now apply to what the CLI sends here"
            },
        );
    }
    if let (Some(ov), Some(nv)) = (&o.one_of, &n.one_of) {
        let removed = minus(ov, nv);
        if !removed.is_empty() {
            out.push(
                shown,
                ChangeKind::OneOfMembersRemoved,
                Verdict::Breaking,
                format!("no longer one of: {}", join(&removed)),
                "the CLI may send these types here today",
            );
        }
        let added = minus(nv, ov);
        if !added.is_empty() {
            out.push(
                shown,
                ChangeKind::OneOfMembersAdded,
                Verdict::Additive,
                format!("now also one of: {}", join(&added)),
                "more types are accepted here",
            );
        }
        if removed.is_empty() && added.is_empty() && ov != nv {
            out.push(
                shown,
                ChangeKind::OneOfReordered,
                Verdict::Cosmetic,
                "oneOf members in another order",
                "the same types are accepted",
            );
        }
    }
    let keys: BTreeSet<&String> = o.constraints.keys().chain(n.constraints.keys()).collect();
    for key in keys {
        constraint(
            key,
            o.constraints.get(key),
            n.constraints.get(key),
            shown,
            out,
        );
    }
}

fn constraint(
    key: &str,
    old: Option<&serde_json::Value>,
    new: Option<&serde_json::Value>,
    shown: &str,
    out: &mut Out<'_>,
) {
    if old == new {
        return;
    }
    let show =
        |v: Option<&serde_json::Value>| v.map_or_else(|| "(none)".to_string(), |v| v.to_string());
    let detail = format!("{key} {} -> {}", show(old), show(new));
    // A lower bound of 0 on a length or count says nothing.
    let trivial = |v: Option<&serde_json::Value>| {
        matches!(key, "minLength" | "minItems") && v.and_then(num) == Some(0.0)
    };
    let tighter = match key {
        "minLength" | "minItems" | "minimum" => match (old.and_then(num), new.and_then(num)) {
            (Some(a), Some(b)) => b > a,
            (None, Some(_)) => !trivial(new),
            (_, None) => false,
        },
        "maxLength" | "maxItems" | "maximum" => match (old.and_then(num), new.and_then(num)) {
            (Some(a), Some(b)) => b < a,
            (None, Some(_)) => true,
            (_, None) => false,
        },
        // A changed pattern cannot be proven to accept everything the old one did.
        _ => new.is_some(),
    };
    if tighter {
        out.push(
            shown,
            ChangeKind::ConstraintTightened,
            Verdict::Breaking,
            detail,
            if key == "pattern" {
                "values the CLI sends today may not match the new pattern"
            } else {
                "values the CLI sends today may fall outside the new bound"
            },
        );
    } else {
        out.push(
            shown,
            ChangeKind::ConstraintLoosened,
            Verdict::Additive,
            detail,
            "every value sent today stays within the bound",
        );
    }
}

/// A contracts tree to compare: a directory, or a git revision of `contracts/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Dir(PathBuf),
    /// A git tree-ish naming the contracts tree (`HEAD~1:contracts`, `main:contracts`).
    Git(String),
}

impl Source {
    /// A directory if `arg` is one, else a git revision: `REV` means `REV:contracts`, and
    /// `REV:PATH` names the tree itself.
    pub fn parse(arg: &str, cwd: &Path) -> Source {
        let path = cwd.join(arg);
        if path.is_dir() {
            Source::Dir(PathBuf::from(arg))
        } else if arg.contains(':') {
            Source::Git(arg.to_string())
        } else {
            Source::Git(format!("{arg}:contracts"))
        }
    }

    pub fn label(&self) -> String {
        match self {
            Source::Dir(p) => format!("directory {}", p.display()),
            Source::Git(t) => format!("git {t}"),
        }
    }
}

/// Why a side could not be loaded (a usage or input error, exit status 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError(pub String);

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InputError {}

fn git(cwd: &Path, args: &[&str]) -> Result<Vec<u8>, String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(cwd)
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if output.status.success() {
        Ok(output.stdout)
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_string())
    }
}

/// Write the blobs of the git tree `treeish` into `dest`.
fn extract(cwd: &Path, treeish: &str, dest: &Path) -> Result<(), String> {
    if treeish.starts_with('-') {
        return Err(format!("'{treeish}' is not a revision"));
    }
    let kind = git(cwd, &["cat-file", "-t", treeish])?;
    if String::from_utf8_lossy(&kind).trim() != "tree" {
        return Err(format!("'{treeish}' is not a directory tree"));
    }
    let listing = git(cwd, &["ls-tree", "-r", "-z", treeish])?;
    for entry in listing.split(|b| *b == 0).filter(|e| !e.is_empty()) {
        let entry = String::from_utf8_lossy(entry);
        let Some((meta, rel)) = entry.split_once('\t') else {
            return Err(format!("unexpected git ls-tree line '{entry}'"));
        };
        let mut meta = meta.split(' ');
        let (_mode, kind, oid) = (meta.next(), meta.next(), meta.next());
        let (Some("blob"), Some(oid)) = (kind, oid) else {
            continue;
        };
        let rel = Path::new(rel);
        if rel
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(format!("refusing the path '{}'", rel.display()));
        }
        let bytes = git(cwd, &["cat-file", "blob", oid])?;
        let path = dest.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        std::fs::write(&path, bytes)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

/// The input file to read for `stable`: the stable name, or the one versioned name an older
/// revision used (`upstream-3.0.0-shape.json`).
fn input_name(dir: &Path, stable: &str) -> String {
    if dir.join(stable).is_file() {
        return stable.to_string();
    }
    crate::versioned_input(dir, stable).unwrap_or_else(|| stable.to_string())
}

/// Load one side of a diff into its compiled model. `cwd` is where relative directories and git
/// commands are resolved.
pub fn load(source: &Source, cwd: &Path) -> Result<Model, InputError> {
    let label = source.label();
    let tmp;
    let dir = match source {
        Source::Dir(p) => cwd.join(p),
        Source::Git(treeish) => {
            tmp = tempfile::tempdir()
                .map_err(|e| InputError(format!("{label}: cannot create a temp dir: {e}")))?;
            extract(cwd, treeish, tmp.path()).map_err(|e| {
                InputError(format!(
                    "{label}: not a directory, and git cannot read it as a revision of contracts/: {e}"
                ))
            })?;
            tmp.path().to_path_buf()
        }
    };
    let shape = input_name(&dir, crate::shape::FILE);
    let rules = input_name(&dir, crate::event_rules::FILE);
    let contract = crate::load_named(&dir, &shape, &rules)
        .map_err(|e| InputError(format!("{label}: codegen cannot load it: {e}")))?;
    Ok(contract.model())
}

/// Load both sides and compare them.
pub fn run(old: &Source, new: &Source, cwd: &Path) -> Result<Report, InputError> {
    let o = load(old, cwd)?;
    let n = load(new, cwd)?;
    Ok(Report::new(old.label(), new.label(), compare(&o, &n)))
}
