//! A conformance harness: checks requests against LINE's OpenAPI descriptions, read in place
//! from `../shared/fixtures/line/openapi/` (or `ENISHI_LINE_OPENAPI_DIR`), never copied.
//!
//! For each request it finds the operation (method and path template; literal segments win
//! over parameters), then checks the host (`servers` of the operation: the data host or
//! not), the bearer token when the operation is secured, path and query parameters (declared,
//! required, typed, within `minimum`/`maximum`/`enum`), and the body: present when required,
//! absent when none is described, of a described content type, and (JSON or form) valid
//! against the schema: types, `required`, `enum`, `minLength`/`maxLength`,
//! `minItems`/`maxItems`, `minimum`/`maximum`, `pattern`, `$ref`, `allOf`, `oneOf`/`anyOf`,
//! `discriminator` mappings, `nullable`, and properties no schema of the object describes.
//!
//! Tests record what their client sent with `FakeLine::builder().record_requests(true)` and
//! call [`assert_conforms`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::OnceLock;

use enishi::testkit::{FakeLine, RecordedRequest};
use serde_json::{Map, Value};

/// A request to check, in the harness's own terms (tests build bad ones by hand).
#[derive(Debug, Clone)]
pub(crate) struct Req {
    pub(crate) method: String,
    pub(crate) data_host: bool,
    pub(crate) path: String,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Req {
    pub(crate) fn from_recorded(r: &RecordedRequest) -> Self {
        Self {
            method: r.method.clone(),
            data_host: r.data_host,
            path: r.path.clone(),
            query: r
                .query
                .as_deref()
                .map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect())
                .unwrap_or_default(),
            headers: r
                .headers
                .iter()
                .map(|(k, v)| {
                    (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned())
                })
                .collect(),
            body: r.body.to_vec(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// One operation of one document.
struct Operation {
    doc: usize,
    method: String,
    template: String,
    segments: Vec<Option<String>>,
    /// `None` for a parameter segment.
    params: Vec<Value>,
    op: Value,
    data_host: bool,
    secured: bool,
}

/// Every operation of LINE's OpenAPI documents.
pub(crate) struct Spec {
    docs: Vec<(String, Value)>,
    ops: Vec<Operation>,
}

fn spec_dir() -> PathBuf {
    std::env::var_os("ENISHI_LINE_OPENAPI_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/line/openapi"),
        PathBuf::from,
    )
}

/// The specs, read once per test binary.
pub(crate) fn spec() -> &'static Spec {
    static SPEC: OnceLock<Spec> = OnceLock::new();
    SPEC.get_or_init(|| {
        let dir = spec_dir();
        Spec::load(&dir).unwrap_or_else(|e| {
            panic!(
                "cannot read LINE's OpenAPI specs in {}: {e}. They live in the shared fixtures \
                 (../shared/fixtures/line/openapi next to the repository; a checkout of \
                 github.com/line/line-openapi works too); point ENISHI_LINE_OPENAPI_DIR at them.",
                dir.display()
            )
        })
    })
}

impl Spec {
    fn load(dir: &std::path::Path) -> Result<Self, String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| e.to_string())?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err("no .yml files".into());
        }
        let mut docs = Vec::new();
        let mut ops = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(&file).map_err(|e| e.to_string())?;
            let yaml: serde_yaml_ng::Value =
                serde_yaml_ng::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
            let doc = yaml_to_json(yaml);
            let index = docs.len();
            let global_secured =
                doc.get("security").and_then(Value::as_array).is_some_and(|s| !s.is_empty());
            if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
                for (template, item) in paths {
                    let path_params = item
                        .get("parameters")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    for method in ["get", "post", "put", "delete", "patch"] {
                        let Some(op) = item.get(method) else { continue };
                        let mut params = path_params.clone();
                        params.extend(
                            op.get("parameters")
                                .and_then(Value::as_array)
                                .cloned()
                                .unwrap_or_default(),
                        );
                        let data_host =
                            op.get("servers").and_then(Value::as_array).is_some_and(|s| {
                                s.iter().any(|s| {
                                    s.get("url")
                                        .and_then(Value::as_str)
                                        .is_some_and(|u| u.contains("api-data"))
                                })
                            });
                        let secured = match op.get("security") {
                            Some(Value::Array(s)) => !s.is_empty(),
                            _ => global_secured,
                        };
                        ops.push(Operation {
                            doc: index,
                            method: method.to_uppercase(),
                            template: template.clone(),
                            segments: template
                                .split('/')
                                .map(|s| (!s.starts_with('{')).then(|| s.to_owned()))
                                .collect(),
                            params,
                            op: op.clone(),
                            data_host,
                            secured,
                        });
                    }
                }
            }
            let name =
                file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            docs.push((name, doc));
        }
        Ok(Self { docs, ops })
    }

    fn doc(&self, index: usize) -> &Value {
        &self.docs[index].1
    }

    /// The operation a request is for: `(method, template)`.
    fn find(&self, method: &str, path: &str) -> Option<&Operation> {
        let segments: Vec<&str> = path.split('/').collect();
        self.ops
            .iter()
            .filter(|op| op.method == method && op.segments.len() == segments.len())
            .filter(|op| {
                op.segments
                    .iter()
                    .zip(&segments)
                    .all(|(t, s)| t.as_deref().map_or(!s.is_empty(), |t| t == *s))
            })
            .max_by_key(|op| op.segments.iter().filter(|s| s.is_some()).count())
    }

    /// Checks one request; returns the operation's `METHOD template` and the violations.
    pub(crate) fn check(&self, req: &Req) -> (String, Vec<String>) {
        let Some(op) = self.find(&req.method, &req.path) else {
            return (
                format!("{} {}", req.method, req.path),
                vec!["no operation in LINE's OpenAPI specs has this method and path".into()],
            );
        };
        let name = format!("{} {}", op.method, op.template);
        let mut errors = Vec::new();
        let doc = self.doc(op.doc);
        if op.data_host != req.data_host {
            errors.push(format!(
                "sent to the {} host; the spec serves it on the {} host",
                if req.data_host { "data" } else { "API" },
                if op.data_host { "data" } else { "API" }
            ));
        }
        if op.secured
            && !req.header("authorization").is_some_and(|a| a.starts_with("Bearer ") && a.len() > 7)
        {
            errors.push("a secured operation without `Authorization: Bearer <token>`".into());
        }
        // Parameters.
        let segments: Vec<&str> = req.path.split('/').collect();
        let template: Vec<&str> = op.template.split('/').collect();
        let mut declared_query = BTreeSet::new();
        for param in &op.params {
            let param = resolve(doc, param);
            let name = param.get("name").and_then(Value::as_str).unwrap_or_default();
            let location = param.get("in").and_then(Value::as_str).unwrap_or_default();
            let required = param.get("required").and_then(Value::as_bool).unwrap_or(false);
            let schema = param.get("schema").cloned().unwrap_or(Value::Null);
            let values: Vec<String> = match location {
                "path" => template
                    .iter()
                    .zip(&segments)
                    .filter(|(t, _)| **t == format!("{{{name}}}"))
                    .map(|(_, s)| percent_decode(s))
                    .collect(),
                "query" => {
                    declared_query.insert(name.to_owned());
                    req.query.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()).collect()
                }
                "header" => req.header(name).map(str::to_owned).into_iter().collect(),
                _ => continue,
            };
            if values.is_empty() && required {
                errors.push(format!("required {location} parameter `{name}` is missing"));
            }
            for value in values {
                let typed = typed_scalar(doc, &schema, &value);
                let mut v = Validator { doc, errors: Vec::new(), suppressed: Vec::new() };
                v.check(&typed, &schema, &format!("{location}:{name}"), true);
                errors.extend(v.errors);
            }
        }
        for (key, _) in &req.query {
            if !declared_query.contains(key) {
                errors.push(format!("query parameter `{key}` is not described"));
            }
        }
        // Body.
        let body_spec = op.op.get("requestBody").map(|b| resolve(doc, b));
        match body_spec {
            None => {
                if !req.body.is_empty() {
                    errors.push("a body where the spec describes none".into());
                }
            }
            Some(body_spec) => {
                let required = body_spec.get("required").and_then(Value::as_bool).unwrap_or(false);
                if req.body.is_empty() {
                    if required {
                        errors.push("the required body is missing".into());
                    }
                } else {
                    let content_type = req
                        .header("content-type")
                        .and_then(|c| c.split(';').next())
                        .unwrap_or_default()
                        .trim()
                        .to_ascii_lowercase();
                    let content = body_spec.get("content").and_then(Value::as_object);
                    let media = content.and_then(|c| {
                        c.get(&content_type).or_else(|| {
                            c.iter()
                                .find(|(k, _)| {
                                    k.as_str() == "*/*"
                                        || (k.ends_with("/*")
                                            && content_type.starts_with(k.trim_end_matches('*')))
                                })
                                .map(|(_, v)| v)
                        })
                    });
                    match media {
                        None => errors.push(format!(
                            "content type {content_type:?} is not one the spec accepts ({:?})",
                            content.map(|c| c.keys().cloned().collect::<Vec<_>>())
                        )),
                        Some(media) => {
                            let schema = media.get("schema").cloned().unwrap_or(Value::Null);
                            let value = match content_type.as_str() {
                                "application/json" => {
                                    match serde_json::from_slice::<Value>(&req.body) {
                                        Ok(v) => Some(v),
                                        Err(e) => {
                                            errors
                                                .push(format!("the JSON body does not parse: {e}"));
                                            None
                                        }
                                    }
                                }
                                "application/x-www-form-urlencoded" => Some(Value::Object(
                                    url::form_urlencoded::parse(&req.body)
                                        .into_owned()
                                        .map(|(k, v)| (k, Value::String(v)))
                                        .collect(),
                                )),
                                // Binary bodies (images, files): only the type is checked.
                                _ => None,
                            };
                            if let Some(value) = value {
                                let mut v =
                                    Validator { doc, errors: Vec::new(), suppressed: Vec::new() };
                                v.check(&value, &schema, "body", true);
                                errors.extend(v.errors);
                            }
                        }
                    }
                }
            }
        }
        (name, errors)
    }
}

/// Everything recorded by `line` conforms; returns the operations covered.
pub(crate) fn assert_conforms(line: &FakeLine) -> BTreeSet<String> {
    let spec = spec();
    let recorded = line.recorded_requests();
    assert!(
        !recorded.is_empty(),
        "nothing was recorded: start the fake with record_requests(true)"
    );
    let mut covered = BTreeSet::new();
    let mut failures = Vec::new();
    for request in &recorded {
        let req = Req::from_recorded(request);
        let (op, errors) = spec.check(&req);
        if errors.is_empty() {
            covered.insert(op);
        } else {
            failures.push(format!("{} {}: {}", req.method, req.path, errors.join("; ")));
        }
    }
    assert!(
        failures.is_empty(),
        "requests that do not conform to LINE's OpenAPI specs:\n{}",
        failures.join("\n")
    );
    covered
}

fn yaml_to_json(yaml: serde_yaml_ng::Value) -> Value {
    use serde_yaml_ng::Value as Y;
    match yaml {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => serde_json::to_value(&n).unwrap_or(Value::Null),
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(yaml_to_json).collect()),
        Y::Mapping(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let key = match k {
                        Y::String(s) => s,
                        other => {
                            serde_yaml_ng::to_string(&other).unwrap_or_default().trim().to_owned()
                        }
                    };
                    (key, yaml_to_json(v))
                })
                .collect(),
        ),
        Y::Tagged(tagged) => yaml_to_json(tagged.value),
    }
}

/// Follows a local `$ref` (`#/components/...`), however deep.
fn resolve<'a>(doc: &'a Value, mut value: &'a Value) -> &'a Value {
    for _ in 0..32 {
        match value.get("$ref").and_then(Value::as_str) {
            Some(pointer) => match doc.pointer(pointer.trim_start_matches('#')) {
                Some(target) => value = target,
                None => return &Value::Null,
            },
            None => return value,
        }
    }
    value
}

fn percent_decode(segment: &str) -> String {
    url::form_urlencoded::parse(format!("x={segment}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// A query or path value as the type its schema says (kept a string when it does not parse,
/// so the type check reports it).
fn typed_scalar(doc: &Value, schema: &Value, value: &str) -> Value {
    let schema = resolve(doc, schema);
    match schema.get("type").and_then(Value::as_str) {
        Some("integer") => {
            value.parse::<i64>().map_or_else(|_| Value::String(value.into()), Value::from)
        }
        Some("number") => value
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or_else(|| Value::String(value.into()), Value::Number),
        Some("boolean") => match value {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(value.into()),
        },
        _ => Value::String(value.into()),
    }
}

struct Validator<'a> {
    doc: &'a Value,
    errors: Vec<String>,
    /// Base schemas being validated through a discriminator mapping: their discriminator is
    /// not followed again (the mapped schema's `allOf` refers back to them).
    suppressed: Vec<String>,
}

impl Validator<'_> {
    fn err(&mut self, path: &str, message: impl std::fmt::Display) {
        self.errors.push(format!("{path}: {message}"));
    }

    /// Property names the schema (with its `allOf` parts) describes, or `None` when it allows
    /// any.
    fn known_properties(&self, schema: &Value, out: &mut BTreeSet<String>) -> bool {
        let schema = resolve(self.doc, schema);
        if let Some(extra) = schema.get("additionalProperties")
            && extra != &Value::Bool(false)
        {
            return false;
        }
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            out.extend(props.keys().cloned());
        }
        for part in schema.get("allOf").and_then(Value::as_array).into_iter().flatten() {
            if !self.known_properties(part, out) {
                return false;
            }
        }
        for key in ["oneOf", "anyOf"] {
            if schema.get(key).is_some() {
                return false;
            }
        }
        true
    }

    fn check(&mut self, value: &Value, schema: &Value, path: &str, check_extras: bool) {
        let ref_name = schema.get("$ref").and_then(Value::as_str).map(str::to_owned);
        let schema = resolve(self.doc, schema);
        if schema.is_null() || schema.as_object().is_some_and(Map::is_empty) {
            return;
        }
        if value.is_null() {
            if !schema.get("nullable").and_then(Value::as_bool).unwrap_or(false) {
                self.err(path, "null where the schema does not allow it");
            }
            return;
        }
        // A discriminator with a mapping: validate against the mapped schema.
        if let Some(disc) = schema.get("discriminator")
            && let Some(prop) = disc.get("propertyName").and_then(Value::as_str)
            && !ref_name.as_ref().is_some_and(|r| self.suppressed.contains(r))
            && value.is_object()
        {
            let tag = value.get(prop).and_then(Value::as_str).unwrap_or_default();
            let target = disc.get("mapping").and_then(|m| m.get(tag)).and_then(Value::as_str);
            match target {
                Some(target) => {
                    if let Some(r) = &ref_name {
                        self.suppressed.push(r.clone());
                    }
                    let target = serde_json::json!({ "$ref": target });
                    self.check(value, &target, path, check_extras);
                    if ref_name.is_some() {
                        self.suppressed.pop();
                    }
                }
                None => self.err(path, format!("`{prop}` {tag:?} is none of the described types")),
            }
            return;
        }
        for part in schema.get("allOf").and_then(Value::as_array).into_iter().flatten() {
            self.check(value, part, path, false);
        }
        for (key, exactly_one) in [("oneOf", true), ("anyOf", false)] {
            if let Some(options) = schema.get(key).and_then(Value::as_array) {
                let mut matching = 0;
                let mut first_errors = None;
                for option in options {
                    let mut sub = Validator {
                        doc: self.doc,
                        errors: Vec::new(),
                        suppressed: self.suppressed.clone(),
                    };
                    sub.check(value, option, path, true);
                    if sub.errors.is_empty() {
                        matching += 1;
                    } else if first_errors.is_none() {
                        first_errors = Some(sub.errors);
                    }
                }
                if matching == 0 {
                    self.err(
                        path,
                        format!(
                            "matches none of {key} ({})",
                            first_errors.unwrap_or_default().join("; ")
                        ),
                    );
                } else if exactly_one && matching > 1 {
                    self.err(path, format!("matches {matching} of oneOf, not exactly one"));
                }
            }
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
            && !allowed.contains(value)
        {
            self.err(path, format!("{value} is not one of {}", Value::Array(allowed.clone())));
        }
        let kind = schema.get("type").and_then(Value::as_str);
        let type_ok = match kind {
            Some("object") => value.is_object(),
            Some("array") => value.is_array(),
            Some("string") => value.is_string(),
            Some("integer") => value.is_i64() || value.is_u64(),
            Some("number") => value.is_number(),
            Some("boolean") => value.is_boolean(),
            _ => true,
        };
        if !type_ok {
            self.err(path, format!("{value} is not of type {}", kind.unwrap_or_default()));
            return;
        }
        match value {
            Value::String(s) => {
                let chars = s.chars().count() as u64;
                if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
                    && chars > max
                {
                    self.err(path, format!("{chars} characters, over maxLength {max}"));
                }
                if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
                    && chars < min
                {
                    self.err(path, format!("{chars} characters, under minLength {min}"));
                }
                if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
                    && let Ok(re) = regex::Regex::new(pattern)
                    && !re.is_match(s)
                {
                    self.err(path, format!("{s:?} does not match {pattern:?}"));
                }
            }
            Value::Number(n) => {
                let x = n.as_f64().unwrap_or_default();
                if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
                    && x > max
                {
                    self.err(path, format!("{x} over maximum {max}"));
                }
                if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
                    && x < min
                {
                    self.err(path, format!("{x} under minimum {min}"));
                }
            }
            Value::Array(items) => {
                let len = items.len() as u64;
                if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                    && len > max
                {
                    self.err(path, format!("{len} items, over maxItems {max}"));
                }
                if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                    && len < min
                {
                    self.err(path, format!("{len} items, under minItems {min}"));
                }
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.check(item, item_schema, &format!("{path}[{i}]"), true);
                    }
                }
            }
            Value::Object(object) => {
                for required in
                    schema.get("required").and_then(Value::as_array).into_iter().flatten()
                {
                    if let Some(name) = required.as_str()
                        && !object.contains_key(name)
                    {
                        self.err(path, format!("required property `{name}` is missing"));
                    }
                }
                if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                    for (name, prop_schema) in props {
                        if let Some(v) = object.get(name) {
                            self.check(v, prop_schema, &format!("{path}.{name}"), true);
                        }
                    }
                }
                if check_extras {
                    let mut known = BTreeSet::new();
                    if self.known_properties(schema, &mut known) && !known.is_empty() {
                        for name in object.keys().filter(|k| !known.contains(*k)) {
                            self.err(path, format!("property `{name}` is not described"));
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// Counts of the operations of each document (for a coverage message).
pub(crate) fn operations() -> BTreeMap<String, usize> {
    let spec = spec();
    let mut counts = BTreeMap::new();
    for op in &spec.ops {
        *counts.entry(spec.docs[op.doc].0.clone()).or_default() += 1;
    }
    counts
}
