//! A typed TypeScript client from an app's OpenAPI document (`waypost client --ts`).
//!
//! [`generate`] turns the OpenAPI 3.1 document that `waypost::openapi` serves into one
//! self-contained TypeScript module: a type per component schema, the `ApiError` every non-2xx
//! answer is thrown as, and a `WaypostClient` class with one async method per operation. The
//! module has no runtime dependency beyond the global `fetch`, so it can be copied into any
//! browser or Node (≥ 18) project as is.
//!
//! The mapping follows what the document generator emits (JSON Schema 2020-12 from schemars):
//! `type` may be a list (`["string", "null"]` → `string | null`), enums come as `enum` or as a
//! `oneOf` of `const`s, optional fields are those missing from `required`, and references point
//! into `#/components/schemas`. Anything the mapping does not understand becomes `unknown` rather
//! than a guess, so the types never promise more than the document does. Output is sorted and
//! depends only on the document, so regenerating an unchanged API gives an identical file.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde_json::{Map, Value};

/// Why a document cannot be turned into a client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TypescriptError {
    /// A part every OpenAPI document has is missing or has the wrong type.
    #[error("not an OpenAPI 3 document: {0}")]
    NotOpenApi(String),
    /// A `$ref` that does not point at a component of the document.
    #[error("`{reference}` (at {at}) does not name a component of this document")]
    UnresolvedRef {
        /// The reference as written.
        reference: String,
        /// Where it was met, as a JSON pointer-like path.
        at: String,
    },
    /// Two things of the document would get the same TypeScript name.
    #[error("{first} and {second} would both be named `{name}` in TypeScript")]
    NameClash {
        /// The TypeScript name.
        name: String,
        /// The first owner.
        first: String,
        /// The second owner.
        second: String,
    },
}

type Result<T, E = TypescriptError> = std::result::Result<T, E>;

/// The TypeScript module for `document`, an OpenAPI 3.x document as JSON.
pub fn generate(document: &Value) -> Result<String> {
    let generator = Generator::new(document)?;
    generator.module()
}

/// Names the generated module itself uses, or that TypeScript reserves: a schema with one of
/// these names gets the suffix `Schema`, so that e.g. a component named `Error` or `Blob` does
/// not shadow the global the client's code relies on.
const RESERVED: &[&str] = &[
    // The module's own exports.
    "ApiError",
    "ApiErrorBody",
    "RequestOptions",
    "WaypostClient",
    "WaypostClientOptions",
    // Globals the module refers to.
    "AbortSignal",
    "Array",
    "Blob",
    "BodyInit",
    // The module's own helper types.
    "Call",
    "Error",
    "FormData",
    "JSON",
    "Object",
    "Promise",
    "ReadonlySet",
    "Record",
    "RequestCredentials",
    "RequestInit",
    "Response",
    "Set",
    "String",
    "URLSearchParams",
    // Predefined types and reserved words, which cannot name a type at all.
    "any",
    "bigint",
    "boolean",
    "break",
    "case",
    "catch",
    "class",
    "const",
    "continue",
    "debugger",
    "default",
    "delete",
    "do",
    "else",
    "enum",
    "export",
    "extends",
    "false",
    "finally",
    "for",
    "function",
    "if",
    "implements",
    "import",
    "in",
    "instanceof",
    "interface",
    "let",
    "never",
    "new",
    "null",
    "number",
    "object",
    "package",
    "private",
    "protected",
    "public",
    "return",
    "static",
    "string",
    "super",
    "switch",
    "symbol",
    "this",
    "throw",
    "true",
    "try",
    "typeof",
    "undefined",
    "unknown",
    "var",
    "void",
    "while",
    "with",
    "yield",
];

/// Members of `WaypostClient` that an operation's method must not replace.
const CLIENT_MEMBERS: &[&str] = &["constructor", "setToken", "setCsrfToken"];

/// HTTP methods in the order OpenAPI lists them, which is also the order of the output.
/// Whether `operation` opens a WebSocket (its only success is 101): `fetch` cannot, so the
/// client leaves it out; a browser opens it with `new WebSocket(url)`.
fn is_websocket(operation: &Value) -> bool {
    operation
        .get("responses")
        .and_then(Value::as_object)
        .is_some_and(|responses| {
            responses.contains_key("101") && !responses.keys().any(|code| code.starts_with('2'))
        })
}

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// A TypeScript type expression and how tightly it binds, so that nesting adds parentheses
/// exactly where they are needed (`(A | B)[]`, not `A | B[]`).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Ts {
    text: String,
    precedence: Precedence,
    /// The members of a union or intersection, so that nesting one in another of the same
    /// kind flattens it (`A | B | null`, not `(A | B) | null`) and duplicates collapse.
    members: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Precedence {
    Union,
    Intersection,
    Atom,
}

impl Ts {
    fn atom(text: impl Into<String>) -> Self {
        let text = text.into();
        Ts {
            members: vec![text.clone()],
            text,
            precedence: Precedence::Atom,
        }
    }

    fn unknown() -> Self {
        Ts::atom("unknown")
    }

    fn is_unknown(&self) -> bool {
        self.text == "unknown"
    }

    /// The text, parenthesized when it binds more loosely than `at_least`.
    fn wrapped(&self, at_least: Precedence) -> String {
        if self.precedence < at_least {
            format!("({})", self.text)
        } else {
            self.text.clone()
        }
    }

    fn union(members: Vec<Ts>) -> Ts {
        // `unknown` absorbs a union.
        if members.iter().any(Ts::is_unknown) {
            return Ts::unknown();
        }
        Self::combine(members, Precedence::Union, " | ")
    }

    fn intersection(members: Vec<Ts>) -> Ts {
        // `unknown` vanishes from an intersection.
        let members: Vec<Ts> = members.into_iter().filter(|m| !m.is_unknown()).collect();
        Self::combine(members, Precedence::Intersection, " & ")
    }

    fn combine(members: Vec<Ts>, precedence: Precedence, separator: &str) -> Ts {
        let mut unique: Vec<Ts> = Vec::new();
        for member in members {
            if !unique.iter().any(|u| u.text == member.text) {
                unique.push(member);
            }
        }
        if unique.len() <= 1 {
            // A single member keeps its own binding: `allOf: [X]` is just `X`.
            return unique.pop().unwrap_or_else(Ts::unknown);
        }
        let mut texts: Vec<String> = Vec::new();
        for member in unique {
            let parts = if member.precedence == precedence {
                member.members
            } else {
                vec![member.wrapped(precedence)]
            };
            for part in parts {
                if !texts.contains(&part) {
                    texts.push(part);
                }
            }
        }
        Ts {
            text: texts.join(separator),
            precedence,
            members: texts,
        }
    }
}

/// Whether `name` can be written bare as a TypeScript identifier or property name.
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

/// A property name as written in a type or object literal: bare when possible, quoted otherwise.
fn property_name(name: &str) -> String {
    if is_identifier(name) {
        name.to_owned()
    } else {
        string_literal(name)
    }
}

/// `object.name`, or `object["name"]` for names that are not identifiers; an `object` written
/// `params?` (one that may be left out) gives `params?.name` and `params?.["name"]`.
fn property_access(object: &str, name: &str) -> String {
    if is_identifier(name) {
        format!("{object}.{name}")
    } else if object.ends_with('?') {
        format!("{object}.[{}]", string_literal(name))
    } else {
        format!("{object}[{}]", string_literal(name))
    }
}

/// A JSON string is a valid TypeScript string literal (ES2019 allows U+2028/U+2029 in strings).
fn string_literal(text: &str) -> String {
    Value::String(text.to_owned()).to_string()
}

/// A TypeScript literal type for a JSON value, when there is one.
fn literal(value: &Value) -> Ts {
    match value {
        Value::String(text) => Ts::atom(string_literal(text)),
        Value::Number(_) | Value::Bool(_) | Value::Null => Ts::atom(value.to_string()),
        Value::Array(_) | Value::Object(_) => Ts::unknown(),
    }
}

/// `get_api_posts_id` → `getApiPostsId`; segments that are already camelCase (`fileId`) keep
/// their inner capitals.
fn camel_case(id: &str) -> String {
    let mut out = String::new();
    for part in id
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
    {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            if out.is_empty() {
                out.push(first.to_ascii_lowercase());
            } else {
                out.push(first.to_ascii_uppercase());
            }
            out.extend(chars);
        }
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

fn pascal_case(id: &str) -> String {
    let camel = camel_case(id);
    let mut chars = camel.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => camel,
    }
}

/// The same operation id the document generator makes when a document has none.
fn fallback_operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_owned();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        id.push('_');
        id.push_str(part.trim_start_matches('{').trim_end_matches('}'));
    }
    id
}

/// A component name as a TypeScript type name: invalid characters become `_`, reserved names
/// get the suffix `Schema`.
fn type_name(component: &str) -> String {
    let mut name: String = component
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '$' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, '_');
    }
    if RESERVED.contains(&name.as_str()) {
        name.push_str("Schema");
    }
    name
}

/// A `/** … */` comment at `indent` (one line when the text is one line), or nothing for
/// empty text.
fn doc_comment(lines: &[String], indent: &str) -> String {
    let lines: Vec<String> = lines
        .iter()
        .flat_map(|text| text.lines().map(str::trim_end).map(str::to_owned))
        // `*/` would end the comment early.
        .map(|line| line.replace("*/", "*\\/"))
        .collect();
    let lines: Vec<&String> = {
        // Trim blank lines at both ends; inner blank lines separate paragraphs.
        let first = lines.iter().position(|l| !l.trim().is_empty());
        let last = lines.iter().rposition(|l| !l.trim().is_empty());
        match (first, last) {
            (Some(first), Some(last)) => lines[first..=last].iter().collect(),
            _ => return String::new(),
        }
    };
    if lines.len() == 1 {
        return format!("{indent}/** {} */\n", lines[0]);
    }
    let mut out = format!("{indent}/**\n");
    for line in lines {
        if line.is_empty() {
            let _ = writeln!(out, "{indent} *");
        } else {
            let _ = writeln!(out, "{indent} * {line}");
        }
    }
    let _ = writeln!(out, "{indent} */");
    out
}

/// The documentation lines of a schema: its description, its default, whether it is deprecated.
fn schema_doc(schema: &Value) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(text) = schema.get("description").and_then(Value::as_str) {
        lines.push(text.to_owned());
    }
    if let Some(default) = schema.get("default") {
        lines.push(format!("@default {default}"));
    }
    if schema.get("deprecated") == Some(&Value::Bool(true)) {
        lines.push("@deprecated".to_owned());
    }
    lines
}

/// How a request carries its body.
#[derive(Clone, Debug, PartialEq, Eq)]
enum BodyKind {
    /// `JSON.stringify`, `Content-Type: application/json`.
    Json,
    /// `URLSearchParams`, `Content-Type: application/x-www-form-urlencoded`.
    Form,
    /// A `FormData` the caller fills; `fetch` sets the boundary.
    Multipart,
    /// Bytes or text of another media type, sent as given.
    Other(String),
}

#[derive(Clone, Debug)]
struct Body {
    kind: BodyKind,
    ty: Ts,
    required: bool,
}

/// How a success response is read.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Reply {
    Json(Ts),
    Void,
    Blob,
    Text,
    /// The document does not say: JSON if the answer says it is JSON, else text.
    Unknown,
}

impl Reply {
    fn return_type(&self) -> String {
        match self {
            Reply::Json(ty) => ty.text.clone(),
            Reply::Void => "void".into(),
            Reply::Blob => "Blob".into(),
            Reply::Text => "string".into(),
            Reply::Unknown => "unknown".into(),
        }
    }

    /// The `expect` argument of the client's private `#request`.
    fn expect(&self) -> &'static str {
        match self {
            Reply::Json(_) => "json",
            Reply::Void => "void",
            Reply::Blob => "blob",
            Reply::Text => "text",
            Reply::Unknown => "unknown",
        }
    }
}

#[derive(Clone, Debug)]
struct Parameter {
    name: String,
    required: bool,
    ty: Ts,
    doc: Vec<String>,
}

#[derive(Clone, Debug)]
struct Operation {
    method: &'static str,
    path: String,
    id: String,
    name: String,
    doc: Vec<String>,
    path_params: Vec<Parameter>,
    header_params: Vec<Parameter>,
    query_params: Vec<Parameter>,
    body: Option<Body>,
    reply: Reply,
}

impl Operation {
    fn query_type(&self) -> String {
        format!("{}Query", pascal_case(&self.name))
    }
}

struct Generator<'a> {
    document: &'a Value,
    title: String,
    version: String,
    schemas: BTreeMap<&'a str, &'a Value>,
    /// Component name → TypeScript name.
    names: BTreeMap<&'a str, String>,
}

impl<'a> Generator<'a> {
    fn new(document: &'a Value) -> Result<Self> {
        let info = document
            .get("info")
            .ok_or_else(|| TypescriptError::NotOpenApi("no `info`".into()))?;
        let text = |key: &str| -> Result<String> {
            info.get(key)
                .and_then(Value::as_str)
                // The header is a line comment; a newline in the title must not end it.
                .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
                .ok_or_else(|| TypescriptError::NotOpenApi(format!("no `info.{key}`")))
        };
        if !document.get("paths").is_none_or(Value::is_object) {
            return Err(TypescriptError::NotOpenApi(
                "`paths` is not an object".into(),
            ));
        }
        let schemas: BTreeMap<&str, &Value> = match document.pointer("/components/schemas") {
            None => BTreeMap::new(),
            Some(schemas) => schemas
                .as_object()
                .ok_or_else(|| {
                    TypescriptError::NotOpenApi("`components.schemas` is not an object".into())
                })?
                .iter()
                .map(|(name, schema)| (name.as_str(), schema))
                .collect(),
        };
        let mut owners: BTreeMap<String, String> = BTreeMap::new();
        let mut names = BTreeMap::new();
        for name in schemas.keys() {
            let ts = type_name(name);
            claim(&mut owners, &ts, format!("schema `{name}`"))?;
            names.insert(*name, ts);
        }
        Ok(Generator {
            document,
            title: text("title")?,
            version: text("version")?,
            schemas,
            names,
        })
    }

    /// Follows `$ref`s to `#/components/<section>/…` until a value that is not one.
    fn deref(&self, mut value: &'a Value, at: &str) -> Result<&'a Value> {
        // A cycle of references would loop forever; no real document chains more than a few.
        for _ in 0..16 {
            let Some(reference) = value.get("$ref").and_then(Value::as_str) else {
                return Ok(value);
            };
            value = reference
                .strip_prefix('#')
                .filter(|pointer| pointer.starts_with("/components/"))
                .and_then(|pointer| self.document.pointer(pointer))
                .ok_or_else(|| TypescriptError::UnresolvedRef {
                    reference: reference.to_owned(),
                    at: at.to_owned(),
                })?;
        }
        Err(TypescriptError::UnresolvedRef {
            reference: value["$ref"].as_str().unwrap_or_default().to_owned(),
            at: at.to_owned(),
        })
    }

    /// The TypeScript type of `schema`; nested object types are laid out at `indent`.
    fn ts_type(&self, schema: &Value, indent: &str, at: &str) -> Result<Ts> {
        let object = match schema {
            Value::Bool(true) => return Ok(Ts::unknown()),
            Value::Bool(false) => return Ok(Ts::atom("never")),
            Value::Object(object) => object,
            _ => return Ok(Ts::unknown()),
        };
        if let Some(reference) = object.get("$ref").and_then(Value::as_str) {
            // A JSON pointer escapes `/` and `~` in a name as `~1` and `~0`.
            let name = reference
                .strip_prefix("#/components/schemas/")
                .map(|name| name.replace("~1", "/").replace("~0", "~"))
                .and_then(|name| self.names.get(name.as_str()))
                .ok_or_else(|| TypescriptError::UnresolvedRef {
                    reference: reference.to_owned(),
                    at: at.to_owned(),
                })?;
            return Ok(Ts::atom(name.clone()));
        }
        if let Some(value) = object.get("const") {
            return Ok(literal(value));
        }
        if let Some(values) = object.get("enum").and_then(Value::as_array) {
            return Ok(if values.is_empty() {
                Ts::atom("never")
            } else {
                Ts::union(values.iter().map(literal).collect())
            });
        }
        // The parts all hold at once: the schema's own type, and each combinator.
        let mut parts = Vec::new();
        if let Some(own) = self.own_type(object, indent, at)? {
            parts.push(own);
        }
        for (keyword, combine) in [
            ("oneOf", Ts::union as fn(Vec<Ts>) -> Ts),
            ("anyOf", Ts::union),
            ("allOf", Ts::intersection),
        ] {
            if let Some(members) = object.get(keyword).and_then(Value::as_array) {
                let members = members
                    .iter()
                    .enumerate()
                    .map(|(i, m)| self.ts_type(m, indent, &format!("{at}/{keyword}/{i}")))
                    .collect::<Result<Vec<_>>>()?;
                parts.push(combine(members));
            }
        }
        let ty = Ts::intersection(parts);
        // OpenAPI 3.0's way of saying `| null`, for documents from elsewhere.
        if object.get("nullable") == Some(&Value::Bool(true)) {
            return Ok(Ts::union(vec![ty, Ts::atom("null")]));
        }
        Ok(ty)
    }

    /// What `type` (and the keywords of each type) say, or `None` when the schema has no type.
    fn own_type(&self, object: &Map<String, Value>, indent: &str, at: &str) -> Result<Option<Ts>> {
        let types: Vec<&str> = match object.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ if object.contains_key("properties") => vec!["object"],
            _ if object.contains_key("items") || object.contains_key("prefixItems") => {
                vec!["array"]
            }
            _ => return Ok(None),
        };
        let members = types
            .into_iter()
            .map(|t| {
                Ok(match t {
                    "string" => Ts::atom("string"),
                    "integer" | "number" => Ts::atom("number"),
                    "boolean" => Ts::atom("boolean"),
                    "null" => Ts::atom("null"),
                    "array" => self.array_type(object, indent, at)?,
                    "object" => self.object_type(object, indent, at)?,
                    _ => Ts::unknown(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(Ts::union(members)))
    }

    fn array_type(&self, object: &Map<String, Value>, indent: &str, at: &str) -> Result<Ts> {
        if let Some(prefix) = object.get("prefixItems").and_then(Value::as_array) {
            let mut items = prefix
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    self.ts_type(s, indent, &format!("{at}/prefixItems/{i}"))
                        .map(|t| t.text)
                })
                .collect::<Result<Vec<_>>>()?;
            match object.get("items") {
                Some(Value::Bool(false)) => {}
                Some(rest) => {
                    let rest = self.ts_type(rest, indent, &format!("{at}/items"))?;
                    items.push(format!("...{}[]", rest.wrapped(Precedence::Atom)));
                }
                None => items.push("...unknown[]".into()),
            }
            return Ok(Ts::atom(format!("[{}]", items.join(", "))));
        }
        let item = match object.get("items") {
            Some(items) => self.ts_type(items, indent, &format!("{at}/items"))?,
            None => Ts::unknown(),
        };
        Ok(Ts::atom(format!("{}[]", item.wrapped(Precedence::Atom))))
    }

    fn object_type(&self, object: &Map<String, Value>, indent: &str, at: &str) -> Result<Ts> {
        let properties = object.get("properties").and_then(Value::as_object);
        let additional = object.get("additionalProperties");
        match properties {
            Some(properties) if !properties.is_empty() => {
                let inner = format!("{indent}  ");
                let mut out = String::from("{\n");
                out.push_str(&self.members(object, properties, &inner, at)?);
                // Extra keys are allowed; an index signature must admit every property's type,
                // so only `unknown` fits in general.
                if matches!(additional, Some(Value::Object(_)) | Some(Value::Bool(true))) {
                    let _ = writeln!(out, "{inner}[key: string]: unknown;");
                }
                out.push_str(indent);
                out.push('}');
                Ok(Ts::atom(out))
            }
            _ => Ok(match additional {
                Some(Value::Bool(false)) => Ts::atom("Record<string, never>"),
                Some(schema @ Value::Object(_)) => {
                    let value =
                        self.ts_type(schema, indent, &format!("{at}/additionalProperties"))?;
                    Ts::atom(format!("Record<string, {}>", value.text))
                }
                _ => Ts::atom("Record<string, unknown>"),
            }),
        }
    }

    /// The property lines of an object type or interface, each with its doc comment.
    fn members(
        &self,
        object: &Map<String, Value>,
        properties: &Map<String, Value>,
        indent: &str,
        at: &str,
    ) -> Result<String> {
        let required: BTreeSet<&str> = object
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut out = String::new();
        let mut names: Vec<&String> = properties.keys().collect();
        names.sort();
        for name in names {
            let schema = &properties[name];
            let ty = self.ts_type(schema, indent, &format!("{at}/properties/{name}"))?;
            out.push_str(&doc_comment(&schema_doc(schema), indent));
            let optional = if required.contains(name.as_str()) {
                ""
            } else {
                "?"
            };
            let _ = writeln!(
                out,
                "{indent}{}{optional}: {};",
                property_name(name),
                ty.text
            );
        }
        Ok(out)
    }

    /// `export interface` for plain objects, `export type` for everything else.
    fn schema_declaration(&self, component: &str, schema: &Value) -> Result<String> {
        let name = &self.names[component];
        let at = format!("#/components/schemas/{component}");
        let mut out = doc_comment(&schema_doc(schema), "");
        if let Some(object) = schema.as_object().filter(|o| is_plain_object(o)) {
            let properties = object["properties"].as_object().expect("checked above");
            let _ = writeln!(out, "export interface {name} {{");
            out.push_str(&self.members(object, properties, "  ", &at)?);
            out.push_str("}\n");
        } else {
            let ty = self.ts_type(schema, "", &at)?;
            let _ = writeln!(out, "export type {name} = {};", ty.text);
        }
        Ok(out)
    }

    fn operations(&self) -> Result<Vec<Operation>> {
        let mut operations = Vec::new();
        let empty = Map::new();
        let paths = self
            .document
            .get("paths")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let mut sorted: Vec<(&String, &Value)> = paths.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        for (path, item) in sorted {
            let at = format!("#/paths/{path}");
            let item = self.deref(item, &at)?;
            for method in METHODS {
                if let Some(operation) = item.get(*method).filter(|op| !is_websocket(op)) {
                    operations.push(self.operation(method, path, item, operation)?);
                }
            }
        }
        Ok(operations)
    }

    fn operation(
        &self,
        method: &'static str,
        path: &str,
        item: &Value,
        operation: &Value,
    ) -> Result<Operation> {
        let at = format!("#/paths/{path}/{method}");
        let id = operation
            .get("operationId")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .map_or_else(|| fallback_operation_id(method, path), str::to_owned);
        // Path-level parameters apply to every operation unless the operation redefines them.
        let mut declared: Vec<&Value> = Vec::new();
        for list in [item.get("parameters"), operation.get("parameters")] {
            for (i, parameter) in list
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let parameter = self.deref(parameter, &format!("{at}/parameters/{i}"))?;
                declared.retain(|p| {
                    p.get("name") != parameter.get("name") || p.get("in") != parameter.get("in")
                });
                declared.push(parameter);
            }
        }
        let mut path_params = Vec::new();
        let mut header_params = Vec::new();
        let mut query_params = Vec::new();
        for parameter in declared {
            let Some(name) = parameter.get("name").and_then(Value::as_str) else {
                continue;
            };
            let schema = parameter.get("schema").unwrap_or(&Value::Bool(true));
            let mut doc = Vec::new();
            if let Some(text) = parameter.get("description").and_then(Value::as_str) {
                doc.push(text.to_owned());
            }
            let location = parameter.get("in").and_then(Value::as_str).unwrap_or("");
            let param = Parameter {
                name: name.to_owned(),
                required: location == "path"
                    || parameter.get("required") == Some(&Value::Bool(true)),
                ty: self.ts_type(schema, "  ", &format!("{at}/parameters/{name}"))?,
                doc,
            };
            match location {
                "path" => path_params.push(param),
                "query" => query_params.push(param),
                "header" => header_params.push(param),
                // Cookies are the browser's business; `credentials` decides whether it sends them.
                _ => {}
            }
        }
        // A placeholder the parameters forgot still has to be filled in.
        for name in placeholders(path) {
            if !path_params.iter().any(|p| p.name == name) {
                path_params.push(Parameter {
                    name: name.to_owned(),
                    required: true,
                    ty: Ts::atom("string"),
                    doc: Vec::new(),
                });
            }
        }
        path_params.sort_by(|a, b| a.name.cmp(&b.name));
        header_params.sort_by(|a, b| a.name.cmp(&b.name));
        query_params.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Operation {
            method,
            path: path.to_owned(),
            name: camel_case(&id),
            doc: operation_doc(method, path, operation),
            id,
            path_params,
            header_params,
            query_params,
            body: self.body(operation, &at)?,
            reply: self.reply(operation, &at)?,
        })
    }

    fn body(&self, operation: &Value, at: &str) -> Result<Option<Body>> {
        let Some(body) = operation.get("requestBody") else {
            return Ok(None);
        };
        let at = format!("{at}/requestBody");
        let body = self.deref(body, &at)?;
        let required = body.get("required") == Some(&Value::Bool(true));
        let Some(content) = body.get("content").and_then(Value::as_object) else {
            return Ok(None);
        };
        // JSON first: it is the one every other client of the API is sure to speak too.
        let pick = |wanted: fn(&str) -> bool| content.iter().find(|(media, _)| wanted(media));
        let chosen = pick(is_json)
            .map(|(m, c)| (BodyKind::Json, m, c))
            .or_else(|| {
                pick(|m| m == "application/x-www-form-urlencoded")
                    .map(|(m, c)| (BodyKind::Form, m, c))
            })
            .or_else(|| {
                pick(|m| m == "multipart/form-data").map(|(m, c)| (BodyKind::Multipart, m, c))
            })
            .or_else(|| {
                content
                    .iter()
                    .next()
                    .map(|(m, c)| (BodyKind::Other(m.clone()), m, c))
            });
        let Some((kind, media, content)) = chosen else {
            return Ok(None);
        };
        let ty = match kind {
            BodyKind::Json | BodyKind::Form => {
                let schema = content.get("schema").unwrap_or(&Value::Bool(true));
                self.ts_type(schema, "  ", &format!("{at}/content/{media}/schema"))?
            }
            BodyKind::Multipart => Ts::atom("FormData"),
            BodyKind::Other(_) => Ts::atom("BodyInit"),
        };
        Ok(Some(Body { kind, ty, required }))
    }

    fn reply(&self, operation: &Value, at: &str) -> Result<Reply> {
        let empty = Map::new();
        let responses = operation
            .get("responses")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        // Exact codes before ranges, in numeric order.
        let mut codes: Vec<&String> = responses
            .keys()
            .filter(|code| code.starts_with('2'))
            .collect();
        codes.sort_by_key(|code| (code.parse::<u16>().is_err(), code.to_ascii_uppercase()));
        let mut replies: Vec<Reply> = Vec::new();
        for code in codes {
            let at = format!("{at}/responses/{code}");
            let response = self.deref(&responses[code.as_str()], &at)?;
            let content = response.get("content").and_then(Value::as_object);
            let reply = match content.filter(|c| !c.is_empty()) {
                None if matches!(code.as_str(), "204" | "205") => Reply::Void,
                None => Reply::Unknown,
                Some(content) => {
                    if let Some((media, body)) = content.iter().find(|(m, _)| is_json(m)) {
                        let schema = body.get("schema").unwrap_or(&Value::Bool(true));
                        // Laid out for a method signature, which sits one level into the class.
                        Reply::Json(self.ts_type(
                            schema,
                            "  ",
                            &format!("{at}/content/{media}/schema"),
                        )?)
                    } else if content.keys().any(|m| m.starts_with("text/")) {
                        Reply::Text
                    } else {
                        Reply::Blob
                    }
                }
            };
            replies.push(reply);
        }
        Ok(match replies.as_slice() {
            [] => Reply::Unknown,
            [one] => one.clone(),
            many if many.iter().all(|r| matches!(r, Reply::Json(_))) => Reply::Json(Ts::union(
                many.iter()
                    .filter_map(|r| match r {
                        Reply::Json(ty) => Some(ty.clone()),
                        _ => None,
                    })
                    .collect(),
            )),
            [first, rest @ ..] if rest.iter().all(|r| r == first) => first.clone(),
            // Mixed kinds (JSON or nothing, say): read whatever comes.
            _ => Reply::Unknown,
        })
    }

    fn module(&self) -> Result<String> {
        let operations = self.operations()?;
        // Every exported name and every method name must be unique.
        let mut owners: BTreeMap<String, String> = self
            .names
            .iter()
            .map(|(component, ts)| (ts.clone(), format!("schema `{component}`")))
            .collect();
        for reserved in RESERVED {
            owners
                .entry((*reserved).to_owned())
                .or_insert_with(|| "the client's own code".into());
        }
        let mut methods: BTreeMap<String, String> = CLIENT_MEMBERS
            .iter()
            .map(|m| ((*m).to_owned(), "the client's own code".to_owned()))
            .collect();
        for operation in &operations {
            let owner = format!(
                "operation `{}` ({} {})",
                operation.id,
                operation.method.to_uppercase(),
                operation.path
            );
            claim(&mut methods, &operation.name, owner.clone())?;
            if !operation.query_params.is_empty() {
                claim(&mut owners, &operation.query_type(), owner)?;
            }
        }

        let mut out = format!(
            "// Generated by waypost client --ts from {} {}. Do not edit.\n",
            self.title, self.version
        );
        out.push_str(PRELUDE_COMMENT);
        for (component, schema) in &self.schemas {
            out.push('\n');
            out.push_str(&self.schema_declaration(component, schema)?);
        }
        for operation in operations.iter().filter(|op| !op.query_params.is_empty()) {
            out.push('\n');
            out.push_str(&doc_comment(
                &[format!(
                    "The query of `{} {}`.",
                    operation.method.to_uppercase(),
                    operation.path
                )],
                "",
            ));
            let _ = writeln!(out, "export interface {} {{", operation.query_type());
            out.push_str(&parameter_members(&operation.query_params, "  "));
            out.push_str("}\n");
        }
        out.push('\n');
        out.push_str(RUNTIME_TYPES);
        out.push('\n');
        out.push_str(CLIENT_HEAD);
        for operation in &operations {
            out.push('\n');
            out.push_str(&method_source(operation));
        }
        out.push_str(CLIENT_TAIL);
        out.push('\n');
        out.push_str(HELPERS);
        // Only what some method calls: an unused function fails a consumer's `noUnusedLocals`.
        let uses = |kind: BodyKind| {
            operations
                .iter()
                .any(|op| op.body.as_ref().is_some_and(|b| b.kind == kind))
        };
        if uses(BodyKind::Json) {
            out.push('\n');
            out.push_str(JSON_BODY);
        }
        if uses(BodyKind::Form) {
            out.push('\n');
            out.push_str(FORM_BODY);
        }
        Ok(out)
    }
}

/// Registers `name` for `owner`, or reports who has it already.
fn claim(owners: &mut BTreeMap<String, String>, name: &str, owner: String) -> Result<()> {
    if let Some(first) = owners.get(name) {
        return Err(TypescriptError::NameClash {
            name: name.to_owned(),
            first: first.clone(),
            second: owner,
        });
    }
    owners.insert(name.to_owned(), owner);
    Ok(())
}

fn is_json(media: &str) -> bool {
    let essence = media.split(';').next().unwrap_or("").trim();
    essence == "application/json" || essence.ends_with("+json")
}

/// An object with properties and nothing that would make it more than an interface can say.
fn is_plain_object(object: &Map<String, Value>) -> bool {
    let typed_object = match object.get("type") {
        Some(Value::String(t)) => t == "object",
        Some(_) => false,
        None => true,
    };
    typed_object
        && object
            .get("properties")
            .and_then(Value::as_object)
            .is_some_and(|p| !p.is_empty())
        && ![
            "$ref", "const", "enum", "oneOf", "anyOf", "allOf", "nullable",
        ]
        .iter()
        .any(|k| object.contains_key(*k))
        && !matches!(
            object.get("additionalProperties"),
            Some(Value::Object(_)) | Some(Value::Bool(true))
        )
}

/// `{id}` placeholders of a path template, in order.
fn placeholders(path: &str) -> impl Iterator<Item = &str> {
    path.split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
}

/// The first JSDoc line: `` `GET /api/posts/{id}`: summary ``, then the rest of the
/// description, and what authentication the operation takes.
fn operation_doc(method: &str, path: &str, operation: &Value) -> Vec<String> {
    let summary = operation.get("summary").and_then(Value::as_str);
    let description = operation.get("description").and_then(Value::as_str);
    let mut lines = Vec::new();
    let head = format!("`{} {}`", method.to_uppercase(), path);
    lines.push(match summary {
        Some(summary) => format!("{head}: {}", summary.trim()),
        None => head,
    });
    if let Some(description) = description {
        // Waypost's description is the handler's whole doc comment, summary first.
        let rest = match summary {
            Some(summary) => description.strip_prefix(summary).unwrap_or(description),
            None => description,
        };
        let rest = rest.trim();
        if !rest.is_empty() {
            lines.push(rest.to_owned());
        }
    }
    if let Some(alternatives) = operation.get("security").and_then(Value::as_array) {
        let optional = alternatives
            .iter()
            .any(|a| a.as_object().is_some_and(Map::is_empty));
        let schemes: Vec<String> = alternatives
            .iter()
            .filter_map(Value::as_object)
            .filter(|a| !a.is_empty())
            .map(|a| a.keys().cloned().collect::<Vec<_>>().join(" + "))
            .collect();
        if !schemes.is_empty() {
            let how = if optional { "optional" } else { "required" };
            lines.push(format!("Authentication {how}: {}.", schemes.join(" or ")));
        }
    }
    if operation.get("deprecated") == Some(&Value::Bool(true)) {
        lines.push("@deprecated".into());
    }
    lines
}

fn parameter_members(parameters: &[Parameter], indent: &str) -> String {
    let mut out = String::new();
    for parameter in parameters {
        out.push_str(&doc_comment(&parameter.doc, indent));
        let optional = if parameter.required { "" } else { "?" };
        let _ = writeln!(
            out,
            "{indent}{}{optional}: {};",
            property_name(&parameter.name),
            parameter.ty.text
        );
    }
    out
}

/// `` `/api/posts/${encodeURIComponent(String(params.id))}` ``, or a plain string literal for a
/// path without placeholders.
fn path_expression(path: &str) -> String {
    if placeholders(path).next().is_none() {
        return string_literal(path);
    }
    let mut out = String::from("`");
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        let Some(length) = rest[start..].find('}') else {
            break;
        };
        out.push_str(&template_text(&rest[..start]));
        let name = &rest[start + 1..start + length];
        let _ = write!(
            out,
            "${{encodeURIComponent(String({}))}}",
            property_access("params", name)
        );
        rest = &rest[start + length + 1..];
    }
    out.push_str(&template_text(rest));
    out.push('`');
    out
}

/// Text inside a template literal: `` ` ``, `\` and `${` must not act.
fn template_text(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('`', "\\`")
        .replace("${", "\\${")
}

/// One method of `WaypostClient`.
fn method_source(operation: &Operation) -> String {
    let mut arguments: Vec<(String, bool)> = Vec::new();
    let mut params = operation.path_params.clone();
    params.extend(operation.header_params.iter().cloned());
    params.sort_by(|a, b| a.name.cmp(&b.name));
    let params_argument = (!params.is_empty()).then(|| {
        let fields: Vec<String> = params
            .iter()
            .map(|param| {
                let optional = if param.required { "" } else { "?" };
                format!(
                    "{}{optional}: {}",
                    property_name(&param.name),
                    param.ty.text
                )
            })
            .collect();
        let ty = format!("{{ {} }}", fields.join("; "));
        (format!("params: {ty}"), params.iter().any(|p| p.required))
    });
    // Params that are all optional (headers such as `Idempotency-Key`) come after the body, so
    // adding one to an operation leaves its callers' arguments where they were.
    let params_required = params_argument
        .as_ref()
        .is_some_and(|(_, required)| *required);
    if params_required {
        arguments.extend(params_argument.clone());
    }
    if !operation.query_params.is_empty() {
        let required = operation.query_params.iter().any(|p| p.required);
        arguments.push((format!("query: {}", operation.query_type()), required));
    }
    if let Some(body) = &operation.body {
        arguments.push((format!("body: {}", body.ty.text), body.required));
    }
    if !params_required {
        arguments.extend(params_argument);
    }
    arguments.push(("options: RequestOptions".into(), false));
    // An optional argument may not come before a required one; such a one stays required
    // (and takes `{}` or `undefined`).
    let mut signature = Vec::new();
    let mut later_required = false;
    for (argument, required) in arguments.into_iter().rev() {
        if required || later_required {
            later_required = true;
            let argument = if required {
                argument
            } else {
                argument.replacen(": ", ": undefined | ", 1)
            };
            signature.push(argument);
        } else {
            signature.push(argument.replacen(": ", "?: ", 1));
        }
    }
    signature.reverse();

    let mut call = Vec::new();
    if !operation.query_params.is_empty() {
        call.push("query".to_owned());
    }
    if !operation.header_params.is_empty() {
        let headers: Vec<String> = operation
            .header_params
            .iter()
            .map(|param| {
                let object = if params_required { "params" } else { "params?" };
                format!(
                    "{}: {}",
                    string_literal(&param.name),
                    property_access(object, &param.name)
                )
            })
            .collect();
        call.push(format!("headers: {{ {} }}", headers.join(", ")));
    }
    if let Some(body) = &operation.body {
        let (value, content_type) = match &body.kind {
            BodyKind::Json => ("jsonBody(body)", Some("application/json".to_owned())),
            BodyKind::Form => (
                "formBody(body)",
                Some("application/x-www-form-urlencoded".to_owned()),
            ),
            BodyKind::Multipart => ("body", None),
            BodyKind::Other(media) => ("body", Some(media.clone())),
        };
        call.push(if value == "body" {
            "body".to_owned()
        } else {
            format!("body: {value}")
        });
        if let Some(content_type) = content_type {
            call.push(format!("contentType: {}", string_literal(&content_type)));
        }
    }
    call.push("options".into());
    call.push(format!(
        "expect: {}",
        string_literal(operation.reply.expect())
    ));

    let mut out = doc_comment(&operation.doc, "  ");
    let _ = writeln!(
        out,
        "  async {}({}): Promise<{}> {{",
        operation.name,
        signature.join(", "),
        operation.reply.return_type()
    );
    let request = format!(
        "this.#request({}, {}, {{ {} }})",
        string_literal(&operation.method.to_uppercase()),
        path_expression(&operation.path),
        call.join(", ")
    );
    match &operation.reply {
        Reply::Void => {
            let _ = writeln!(out, "    await {request};");
        }
        reply if reply.return_type() == "unknown" => {
            let _ = writeln!(out, "    return {request};");
        }
        reply => {
            // The cast sits one level deeper than the signature the type was laid out for.
            let _ = writeln!(
                out,
                "    return (await {request}) as {};",
                reply.return_type().replace('\n', "\n  ")
            );
        }
    }
    out.push_str("  }\n");
    out
}

const PRELUDE_COMMENT: &str = "\
//
// A typed client for every operation of the API: one async method per operation, named after
// its operationId. Needs only the global `fetch` (browsers, Node 18+, Deno, Bun).
";

const RUNTIME_TYPES: &str = r#"/** The one error shape every failure of the API is answered with. */
export interface ApiErrorBody {
  /** A sentence for people. */
  error: string;
  /** A snake_case code for programs. */
  code: string;
  /** The request's id, as the server logged it. */
  requestId: string;
  /** Per-field messages for `validation_failed`, or other detail. */
  details?: unknown;
}

/** Thrown for every answer outside 2xx. */
export class ApiError extends Error {
  /** The HTTP status. */
  readonly status: number;
  /** The error body, when the answer was in the API's error shape. */
  readonly body: ApiErrorBody | undefined;
  /** `body.code`, e.g. `not_found`; `undefined` without an error body. */
  readonly code: string | undefined;
  /** `body.requestId`, to find the request in the server's log. */
  readonly requestId: string | undefined;

  constructor(method: string, path: string, status: number, body: ApiErrorBody | undefined) {
    super(`${method} ${path}: ${status} ${body === undefined ? "(no error body)" : `${body.code}: ${body.error}`}`);
    this.name = "ApiError";
    this.status = status;
    this.body = body;
    this.code = body?.code;
    this.requestId = body?.requestId;
  }
}

/** How a `WaypostClient` reaches the API. */
export interface WaypostClientOptions {
  /** Where the API is served, e.g. `https://example.com`; `""` for the page's own origin. */
  baseUrl: string;
  /** A bearer token (from login), sent as `Authorization: Bearer …`. */
  token?: string;
  /** Sent as `X-CSRF-Token` on unsafe methods, for cookie sessions. */
  csrfToken?: string;
  /** Whether the browser sends cookies; `"include"` for a cookie session on another origin. */
  credentials?: RequestCredentials;
  /** A `fetch` to use instead of the global one (tests, instrumentation). */
  fetch?: typeof fetch;
}

/** Per-call extras. */
export interface RequestOptions {
  /** Extra headers; they win over the client's own. */
  headers?: Record<string, string>;
  /** Aborts the request. */
  signal?: AbortSignal;
}
"#;

const CLIENT_HEAD: &str = r#"/** The API, one method per operation. Throws `ApiError` for every answer outside 2xx. */
export class WaypostClient {
  readonly #baseUrl: string;
  readonly #credentials: RequestCredentials | undefined;
  readonly #fetch: typeof fetch;
  #token: string | undefined;
  #csrfToken: string | undefined;

  constructor(options: WaypostClientOptions) {
    this.#baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.#credentials = options.credentials;
    // The global is looked up per call, so a `fetch` installed later (a test's mock) is used.
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.#token = options.token;
    this.#csrfToken = options.csrfToken;
  }

  /** Sets (or with `undefined`, clears) the bearer token sent with every request. */
  setToken(token: string | undefined): void {
    this.#token = token;
  }

  /** Sets (or clears) the CSRF token sent with POST, PUT, PATCH and DELETE. */
  setCsrfToken(token: string | undefined): void {
    this.#csrfToken = token;
  }

  async #request(method: string, path: string, call: Call): Promise<unknown> {
    let url = this.#baseUrl + path;
    if (call.query !== undefined) {
      const search = searchParams(call.query).toString();
      if (search !== "") url += `?${search}`;
    }
    const headers: Record<string, string> = {};
    if (call.contentType !== undefined) headers["Content-Type"] = call.contentType;
    if (this.#token !== undefined) headers["Authorization"] = `Bearer ${this.#token}`;
    if (this.#csrfToken !== undefined && UNSAFE_METHODS.has(method)) {
      headers["X-CSRF-Token"] = this.#csrfToken;
    }
    for (const [name, value] of Object.entries(call.headers ?? {})) {
      if (value !== undefined && value !== null) headers[name] = String(value);
    }
    Object.assign(headers, call.options?.headers);
    const init: RequestInit = { method, headers };
    if (call.body !== undefined) init.body = call.body;
    if (this.#credentials !== undefined) init.credentials = this.#credentials;
    if (call.options?.signal !== undefined) init.signal = call.options.signal;
    // Called through a local, not as `this.#fetch(…)`: a browser's `fetch` throws "Illegal
    // invocation" when its `this` is anything but the window.
    const fetcher = this.#fetch;
    const response = await fetcher(url, init);
    if (!response.ok) {
      throw new ApiError(method, path, response.status, await errorBody(response));
    }
    switch (call.expect) {
      case "json":
        return response.json();
      case "void":
        // Read to the end so the connection can be reused.
        await response.arrayBuffer();
        return undefined;
      case "blob":
        return response.blob();
      case "text":
        return response.text();
      case "unknown":
        return unknownBody(response);
    }
  }
"#;

const CLIENT_TAIL: &str = "}\n";

const JSON_BODY: &str = r#"/** A JSON body; an optional body left out is not sent. */
function jsonBody(body: unknown): string | undefined {
  return body === undefined ? undefined : JSON.stringify(body);
}
"#;

const FORM_BODY: &str = r#"/** An `application/x-www-form-urlencoded` body; an optional body left out is not sent. */
function formBody(body: unknown): URLSearchParams | undefined {
  return body === undefined ? undefined : searchParams(body);
}
"#;

const HELPERS: &str = r#"/** What a method hands to `#request`. */
interface Call {
  query?: unknown;
  headers?: Record<string, unknown>;
  body?: BodyInit | undefined;
  contentType?: string;
  options?: RequestOptions | undefined;
  expect: "json" | "void" | "blob" | "text" | "unknown";
}

const UNSAFE_METHODS: ReadonlySet<string> = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** Query or form fields; `undefined` and `null` are left out, arrays repeat the key. */
function searchParams(values: unknown): URLSearchParams {
  const search = new URLSearchParams();
  if (typeof values !== "object" || values === null) return search;
  for (const [key, value] of Object.entries(values)) {
    for (const item of Array.isArray(value) ? value : [value]) {
      if (item === undefined || item === null) continue;
      search.append(key, typeof item === "object" ? JSON.stringify(item) : String(item));
    }
  }
  return search;
}

/** The error body when the answer is in the API's error shape. */
async function errorBody(response: Response): Promise<ApiErrorBody | undefined> {
  let value: unknown;
  try {
    value = JSON.parse(await response.text());
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const body = value as Record<string, unknown>;
  return typeof body["error"] === "string" &&
    typeof body["code"] === "string" &&
    typeof body["requestId"] === "string"
    ? (value as ApiErrorBody)
    : undefined;
}

/** An answer the document does not describe: JSON when it says so, text otherwise. */
async function unknownBody(response: Response): Promise<unknown> {
  const text = await response.text();
  if (text === "") return undefined;
  const type = response.headers.get("Content-Type") ?? "";
  return /[\/+]json\b/i.test(type) ? (JSON.parse(text) as unknown) : text;
}
"#;

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn document(schemas: Value) -> Value {
        json!({
            "openapi": "3.1.0",
            "info": { "title": "t", "version": "1" },
            "paths": {},
            "components": { "schemas": schemas },
        })
    }

    /// The type of `schema` in a document whose components are `Post` and `Sort`.
    fn ts(schema: Value) -> String {
        let document = document(json!({ "Post": {}, "Sort": {}, "Error": {} }));
        let generator = Generator::new(&document).unwrap();
        generator.ts_type(&schema, "", "#").unwrap().text
    }

    #[test]
    fn scalars_map_to_their_typescript_types() {
        assert_eq!(ts(json!({ "type": "string" })), "string");
        assert_eq!(
            ts(json!({ "type": "integer", "format": "uint32" })),
            "number"
        );
        assert_eq!(ts(json!({ "type": "number" })), "number");
        assert_eq!(ts(json!({ "type": "boolean" })), "boolean");
        assert_eq!(ts(json!({ "type": "null" })), "null");
    }

    #[test]
    fn unknown_and_empty_schemas_are_unknown() {
        assert_eq!(ts(json!({})), "unknown");
        assert_eq!(ts(json!(true)), "unknown");
        assert_eq!(ts(json!({ "description": "anything" })), "unknown");
        assert_eq!(ts(json!(false)), "never");
    }

    #[test]
    fn type_lists_with_null_are_nullable() {
        assert_eq!(ts(json!({ "type": ["string", "null"] })), "string | null");
        assert_eq!(ts(json!({ "type": ["integer", "null"] })), "number | null");
        assert_eq!(
            ts(json!({ "type": ["array", "null"], "items": { "type": "string" } })),
            "string[] | null"
        );
        assert_eq!(
            ts(json!({ "type": "string", "nullable": true })),
            "string | null"
        );
    }

    #[test]
    fn refs_name_the_component_and_any_of_null_is_nullable() {
        assert_eq!(ts(json!({ "$ref": "#/components/schemas/Post" })), "Post");
        assert_eq!(
            ts(json!({ "anyOf": [{ "$ref": "#/components/schemas/Sort" }, { "type": "null" }] })),
            "Sort | null"
        );
        // A component whose name is a global the client uses is renamed, references too.
        assert_eq!(
            ts(json!({ "$ref": "#/components/schemas/Error" })),
            "ErrorSchema"
        );
    }

    #[test]
    fn unresolvable_refs_are_errors() {
        let document = document(json!({}));
        let generator = Generator::new(&document).unwrap();
        let error = generator
            .ts_type(&json!({ "$ref": "#/components/schemas/Nope" }), "", "#/x")
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "`#/components/schemas/Nope` (at #/x) does not name a component of this document"
        );
    }

    #[test]
    fn arrays_parenthesize_unions() {
        assert_eq!(
            ts(json!({ "type": "array", "items": { "$ref": "#/components/schemas/Post" } })),
            "Post[]"
        );
        assert_eq!(
            ts(json!({ "type": "array", "items": { "type": ["string", "null"] } })),
            "(string | null)[]"
        );
        assert_eq!(ts(json!({ "type": "array" })), "unknown[]");
        assert_eq!(
            ts(
                json!({ "type": "array", "prefixItems": [{ "type": "string" }, { "type": "integer" }], "items": false })
            ),
            "[string, number]"
        );
    }

    #[test]
    fn enums_become_literal_unions() {
        assert_eq!(
            ts(json!({ "type": "string", "enum": ["user", "admin"] })),
            r#""user" | "admin""#
        );
        assert_eq!(
            ts(json!({ "oneOf": [
                { "const": "createdAt", "type": "string", "description": "Newest first." },
                { "const": "title", "type": "string" }
            ] })),
            r#""createdAt" | "title""#
        );
        assert_eq!(ts(json!({ "enum": [1, true, null] })), "1 | true | null");
    }

    #[test]
    fn objects_mark_optional_properties_and_document_them() {
        let object = json!({
            "type": "object",
            "required": ["id"],
            "properties": {
                "id": { "type": "string", "description": "Opaque id." },
                "tags": { "type": "array", "items": { "type": "string" } },
                "content-type": { "type": ["string", "null"] }
            }
        });
        assert_eq!(
            ts(object),
            "{\n  \"content-type\"?: string | null;\n  /** Opaque id. */\n  id: string;\n  tags?: string[];\n}"
        );
    }

    #[test]
    fn maps_and_open_objects_are_records() {
        assert_eq!(ts(json!({ "type": "object" })), "Record<string, unknown>");
        assert_eq!(
            ts(json!({ "type": "object", "additionalProperties": { "type": "integer" } })),
            "Record<string, number>"
        );
        assert_eq!(
            ts(json!({ "type": "object", "additionalProperties": false })),
            "Record<string, never>"
        );
    }

    #[test]
    fn all_of_intersects_and_parenthesizes_unions() {
        assert_eq!(
            ts(json!({ "allOf": [
                { "$ref": "#/components/schemas/Post" },
                { "anyOf": [{ "$ref": "#/components/schemas/Sort" }, { "type": "null" }] }
            ] })),
            "Post & (Sort | null)"
        );
        assert_eq!(
            ts(json!({ "allOf": [{ "$ref": "#/components/schemas/Post" }] })),
            "Post"
        );
    }

    #[test]
    fn unions_with_unknown_are_unknown_and_duplicates_collapse() {
        assert_eq!(
            ts(json!({ "anyOf": [{ "type": "string" }, {}] })),
            "unknown"
        );
        assert_eq!(
            ts(json!({ "anyOf": [{ "type": "string" }, { "type": "string" }] })),
            "string"
        );
    }

    #[test]
    fn plain_objects_are_interfaces_and_the_rest_type_aliases() {
        let document = document(json!({
            "Post": {
                "description": "A post.\nSecond line */ closed.",
                "type": "object",
                "required": ["title"],
                "properties": { "title": { "type": "string", "default": "x" } }
            },
            "Sort": { "oneOf": [{ "const": "a" }, { "const": "b" }] },
            "Blob": { "type": "string" }
        }));
        let generator = Generator::new(&document).unwrap();
        assert_eq!(
            generator.schema_declaration("Post", &document["components"]["schemas"]["Post"]).unwrap(),
            "/**\n * A post.\n * Second line *\\/ closed.\n */\nexport interface Post {\n  /** @default \"x\" */\n  title: string;\n}\n"
        );
        assert_eq!(
            generator
                .schema_declaration("Sort", &document["components"]["schemas"]["Sort"])
                .unwrap(),
            "export type Sort = \"a\" | \"b\";\n"
        );
        assert_eq!(
            generator
                .schema_declaration("Blob", &document["components"]["schemas"]["Blob"])
                .unwrap(),
            "export type BlobSchema = string;\n"
        );
    }

    #[test]
    fn names_are_camel_and_pascal_case() {
        assert_eq!(camel_case("get_api_posts_id"), "getApiPostsId");
        assert_eq!(camel_case("get_api_files_fileId"), "getApiFilesFileId");
        assert_eq!(camel_case("post_api_openapi_json"), "postApiOpenapiJson");
        assert_eq!(camel_case("ListPosts"), "listPosts");
        assert_eq!(camel_case("2fa-setup"), "_2faSetup");
        assert_eq!(pascal_case("get_api_posts"), "GetApiPosts");
        assert_eq!(type_name("Page<Post>"), "Page_Post_");
        assert_eq!(
            fallback_operation_id("get", "/api/posts/{id}"),
            "get_api_posts_id"
        );
    }

    #[test]
    fn paths_encode_each_parameter() {
        assert_eq!(path_expression("/api/hello"), "\"/api/hello\"");
        assert_eq!(
            path_expression("/api/tools/{toolId}/use"),
            "`/api/tools/${encodeURIComponent(String(params.toolId))}/use`"
        );
        assert_eq!(
            path_expression("/a/{x-y}"),
            "`/a/${encodeURIComponent(String(params[\"x-y\"]))}`"
        );
        assert_eq!(
            path_expression("/`{a}"),
            "`/\\`${encodeURIComponent(String(params.a))}`"
        );
    }

    #[test]
    fn clashing_method_names_are_reported() {
        let document = json!({
            "openapi": "3.1.0",
            "info": { "title": "t", "version": "1" },
            "paths": {
                "/a": { "get": { "operationId": "get_a" } },
                "/b": { "get": { "operationId": "getA" } }
            }
        });
        let error = generate(&document).unwrap_err();
        assert_eq!(
            error.to_string(),
            "operation `get_a` (GET /a) and operation `getA` (GET /b) would both be named `getA` in TypeScript"
        );
    }

    #[test]
    fn documents_without_info_are_rejected() {
        assert!(matches!(
            generate(&json!({ "paths": {} })),
            Err(TypescriptError::NotOpenApi(_))
        ));
    }
}
