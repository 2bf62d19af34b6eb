//! The README tells the truth: every TOML example in it validates, given the environment
//! variables it names. A fragment says so in its first line and is checked inside a minimal file.

use std::path::PathBuf;

/// The first line of an example that is part of a file rather than a whole one.
const FRAGMENT: &str = "# Part of a shipwatch.toml";

/// What a fragment is checked inside: one environment, as the quick-start config has.
const AROUND: &str = "[env.production]\nbase_url = \"https://shop.example.com\"\n";

fn readme() -> String {
    std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

fn toml_blocks(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    let mut offset = 0;
    while let Some(i) = rest.find("```toml\n") {
        let start = i + "```toml\n".len();
        let Some(len) = rest[start..].find("```") else {
            break;
        };
        let line = text[..offset + i].lines().count() + 1;
        out.push((line, rest[start..start + len].to_string()));
        offset += start + len;
        rest = &rest[start + len..];
    }
    out
}

/// Every `env = "VAR"` an example reads.
fn env_vars(block: &str) -> Vec<String> {
    let re = regex::Regex::new(r#"env = "([A-Z0-9_]+)""#).unwrap();
    re.captures_iter(block).map(|c| c[1].to_string()).collect()
}

#[test]
fn every_toml_example_in_the_readme_validates() {
    let text = readme();
    let blocks = toml_blocks(&text);
    assert!(blocks.len() >= 6, "found {} TOML examples", blocks.len());
    for (line, block) in blocks {
        let file = if block.starts_with(FRAGMENT) {
            format!("{AROUND}{block}")
        } else {
            block.clone()
        };
        let vars = env_vars(&block);
        let getenv = move |n: &str| {
            vars.iter()
                .any(|v| v == n)
                .then(|| "an-example-value-from-the-environment".to_string())
        };
        let name = format!("README.md example at line {line}");
        if let Err(e) = shipwatch::plan::validate_text(&name, &file, &getenv) {
            panic!("{e}\n(an example that is part of a file starts with \"{FRAGMENT}\")");
        }
    }
}
