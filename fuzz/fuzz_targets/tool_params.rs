//! Tool-parameter validation with the real tool schemas (Jira and Slack tools): validating any
//! parameters never panics, and parameters the JSON Schema accepts always deserialise into the
//! tool's typed parameters (the schema and the Rust type never disagree). The tools run against a
//! connection without configuration, so they fail before any I/O once their parameters are parsed.

#![no_main]

mod common;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Result, Unstructured};
use integration_core::{Connection, ErrorKind, InMemoryCache, RegisteredTool, Registry, ToolContext};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

struct World {
    tools: Vec<RegisteredTool>,
    runtime: tokio::runtime::Runtime,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let registry = Registry::new();
        registry.add(integration_jira::provider()).expect("jira tools register");
        registry.add(integration_slack::provider()).expect("slack tools register");
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
        World { tools: registry.tools(), runtime }
    })
}

#[derive(Debug)]
struct Input {
    tool: usize,
    params: Value,
}

/// Values a property schema suggests: its enum members, `const`, and a few of the right type.
fn suggestions(schema: &Value) -> Vec<Value> {
    let mut out: Vec<Value> = schema.get("enum").and_then(Value::as_array).cloned().unwrap_or_default();
    out.extend(schema.get("const").cloned());
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    for t in types {
        out.extend(match t {
            "integer" => vec![
                Value::from(0),
                Value::from(1),
                Value::from(-1),
                Value::from(u32::MAX),
                Value::from(i64::MAX),
            ],
            "number" => vec![Value::from(0.5), Value::from(1e300)],
            "string" => {
                vec![Value::from(""), Value::from("ENG"), Value::from("ENG-1"), Value::from("C0123456789")]
            }
            "boolean" => vec![Value::Bool(true)],
            "array" => vec![Value::Array(vec![]), Value::Array(vec![Value::from("a")])],
            "null" => vec![Value::Null],
            _ => vec![],
        });
    }
    out
}

impl<'a> Arbitrary<'a> for Input {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let tools = &world().tools;
        let tool = u.choose_index(tools.len())?;
        let schema = &tools[tool].spec().parameters;
        let mut params = Map::new();
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for (name, prop) in props {
                if !u.arbitrary::<bool>()? {
                    continue;
                }
                let hints = suggestions(prop);
                let value = if !hints.is_empty() && u.arbitrary()? {
                    u.choose(&hints)?.clone()
                } else {
                    common::json(u, 2, &[])?
                };
                params.insert(name.clone(), value);
            }
        }
        if u.arbitrary::<bool>()? {
            params.insert(u.arbitrary()?, common::json(u, 1, &[])?);
        }
        Ok(Self { tool, params: Value::Object(params) })
    }
}

fuzz_target!(|input: Input| {
    let world = world();
    let tool = &world.tools[input.tool];
    if tool.validate(&input.params).is_err() {
        return;
    }
    let spec = tool.spec();
    let ctx = ToolContext {
        connection: Arc::new(Connection::new(
            spec.provider.clone(),
            "fuzz-unconfigured",
            Value::Object(Map::new()),
        )),
        cache: Arc::new(InMemoryCache::default()),
        use_cache: false,
        deadline: Instant::now() + Duration::from_secs(5),
        attempt: 1,
        idempotency_key: None,
    };
    let result = world.runtime.block_on(tool.tool.call(&ctx, input.params.clone()));
    if let Err(e) = &result
        && matches!(e.kind(), ErrorKind::InvalidInput)
    {
        assert!(
            !e.message().starts_with("invalid parameters: "),
            "{}: the schema accepted {} but the typed parameters refused it: {e}",
            spec.name,
            input.params
        );
    }
});
