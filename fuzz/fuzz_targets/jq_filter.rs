//! jq filter definitions (webhook transforms, custom tool `response_transform`): compiling any text
//! never panics and a compile error points inside the filter (a line and column that exist); a
//! filter that compiles runs under its time and output bounds without panicking.

#![no_main]

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use arbitrary::{Arbitrary, Result, Unstructured};
use integration_webhook::{Limits, Transform, TransformError};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

#[derive(Debug)]
struct Input {
    code: String,
    value: Value,
}

impl<'a> Arbitrary<'a> for Input {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let value = common::json(u, 3, &["action", "repository", "name"])?;
        Ok(Self { code: u.arbitrary()?, value })
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a tokio runtime")
    })
}

fuzz_target!(|input: Input| {
    match Transform::compile(&input.code) {
        Err(TransformError::Compile { line, column, message }) => {
            let lines: Vec<&str> = input.code.split('\n').collect();
            assert!(line >= 1 && line <= lines.len(), "line {line} of {}: {message}", lines.len());
            let width = lines[line - 1].chars().count();
            assert!(column >= 1 && column <= width + 1, "column {column} of {width}: {message}");
        }
        Err(other) => panic!("compile gave a non-compile error: {other:?}"),
        Ok(filter) => {
            assert_eq!(filter.source(), input.code);
            let limits = Limits { time: Duration::from_millis(50), max_output_bytes: 16 * 1024 };
            match runtime().block_on(filter.run(&input.value, limits)) {
                Ok(out) => {
                    // several outputs become an array, whose text is the outputs plus separators
                    let text = out.to_string();
                    assert!(text.len() <= 2 * limits.max_output_bytes + 2, "output of {} bytes", text.len());
                }
                Err(
                    TransformError::Runtime(_)
                    | TransformError::Timeout(_)
                    | TransformError::TooLarge(_)
                    | TransformError::Busy,
                ) => {}
                Err(other) => panic!("run gave {other:?}"),
            }
        }
    }
});
