//! The two schemas the checks compare: the MySQL tables as the migrations (and the proposed
//! `deploy/vitess/*.sql`) leave them, read from the DDL text, and the VSchema of `deploy/vitess`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The repository's root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// A foreign key: `column` references `parent(parent_column)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKey {
    pub column: String,
    pub parent: String,
    pub parent_column: String,
}

/// A table as the DDL leaves it.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub columns: BTreeSet<String>,
    /// The `AUTO_INCREMENT` column.
    pub auto_increment: Option<String>,
    /// Foreign keys by constraint name.
    pub foreign_keys: BTreeMap<String, ForeignKey>,
    /// `COMMENT 'vitess_sequence'`.
    pub sequence: bool,
}

/// Tables by name.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    pub tables: BTreeMap<String, Table>,
}

/// Splits at commas outside parentheses.
fn split_top_level(text: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut depth = 0;
    let mut current = String::new();
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                items.push(current.trim().to_owned());
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if !current.trim().is_empty() {
        items.push(current.trim().to_owned());
    }
    items
}

fn word_list(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ',')
        .filter(|w| !w.is_empty())
        .map(|w| w.trim_matches('`').to_owned())
        .collect()
}

/// `CONSTRAINT name FOREIGN KEY (c) REFERENCES p (r) …`, from its words.
fn foreign_key(words: &[String]) -> Option<(String, ForeignKey)> {
    let upper: Vec<String> = words.iter().map(|w| w.to_uppercase()).collect();
    let at = upper.iter().position(|w| w == "FOREIGN")?;
    let refs = upper.iter().position(|w| w == "REFERENCES")?;
    let name = if upper.first().map(String::as_str) == Some("CONSTRAINT") {
        words.get(1)?.clone()
    } else {
        String::new()
    };
    Some((
        name,
        ForeignKey {
            column: words.get(at + 2)?.clone(),
            parent: words.get(refs + 1)?.clone(),
            parent_column: words.get(refs + 2)?.clone(),
        },
    ))
}

impl Schema {
    /// Applies the DDL of `sql`: `CREATE TABLE`, and `ALTER TABLE` adding columns or foreign keys
    /// and dropping foreign keys (what the migrations use; other statements change no column).
    pub fn apply(&mut self, sql: &str) {
        let text: String = sql
            .lines()
            .map(|l| l.split("--").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        for statement in text.split(';') {
            let statement = statement.trim();
            let upper = statement.to_uppercase();
            if upper.starts_with("CREATE TABLE") {
                let (Some(open), Some(close)) = (statement.find('('), statement.rfind(')')) else {
                    continue;
                };
                let name = word_list(&statement[..open])
                    .last()
                    .cloned()
                    .unwrap_or_default();
                let mut table = Table {
                    sequence: upper.contains("COMMENT 'VITESS_SEQUENCE'"),
                    ..Table::default()
                };
                for item in split_top_level(&statement[open + 1..close]) {
                    let words = word_list(&item);
                    let first = words.first().map(|w| w.to_uppercase()).unwrap_or_default();
                    match first.as_str() {
                        "PRIMARY" | "KEY" | "UNIQUE" | "INDEX" => {}
                        "CONSTRAINT" | "FOREIGN" => {
                            if let Some((n, fk)) = foreign_key(&words) {
                                table.foreign_keys.insert(n, fk);
                            }
                        }
                        _ => {
                            let Some(column) = words.first() else {
                                continue;
                            };
                            if item.to_uppercase().contains("AUTO_INCREMENT") {
                                table.auto_increment = Some(column.clone());
                            }
                            table.columns.insert(column.clone());
                        }
                    }
                }
                self.tables.insert(name, table);
            } else if upper.starts_with("ALTER TABLE") {
                let words = word_list(statement);
                let Some(name) = words.get(2).cloned() else {
                    continue;
                };
                let rest = statement
                    .split_once(name.as_str())
                    .map(|(_, rest)| rest.to_owned())
                    .unwrap_or_default();
                let table = self.tables.entry(name).or_default();
                for item in split_top_level(&rest) {
                    let words = word_list(&item);
                    let upper: Vec<String> = words.iter().map(|w| w.to_uppercase()).collect();
                    let upper: Vec<&str> = upper.iter().map(String::as_str).collect();
                    match upper.as_slice() {
                        ["ADD", "COLUMN", ..] => {
                            table.columns.insert(words[2].clone());
                        }
                        ["ADD", "CONSTRAINT", ..] => {
                            if let Some((n, fk)) = foreign_key(&words[1..]) {
                                table.foreign_keys.insert(n, fk);
                            }
                        }
                        ["DROP", "FOREIGN", "KEY", ..] => {
                            table.foreign_keys.remove(&words[3]);
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    /// The schema after every `.sql` file of `dir`, in name order.
    pub fn from_dir(dir: &Path) -> Schema {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "sql"));
        files.sort();
        let mut schema = Schema::default();
        for file in files {
            schema.apply(&read(&file));
        }
        schema
    }
}

/// A file's text; a missing file fails the test that needs it, naming it.
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The MySQL schema of the core's migrations.
pub fn migrations() -> Schema {
    Schema::from_dir(&repo_root().join("core-api/migrations/mysql"))
}

/// A column vindex: its columns (the first is what queries are routed by) and vindex name.
#[derive(Debug, Clone)]
pub struct ColumnVindex {
    pub columns: Vec<String>,
    pub vindex: String,
}

/// A keyspace's VSchema (`deploy/vitess/*.json`).
#[derive(Debug, Clone)]
pub struct VSchema {
    pub json: Value,
}

impl VSchema {
    /// The VSchema in `deploy/vitess/<name>`.
    pub fn load(name: &str) -> VSchema {
        let path = repo_root().join("deploy/vitess").join(name);
        let json = serde_json::from_str(&read(&path))
            .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
        VSchema { json }
    }

    /// Table names.
    pub fn tables(&self) -> BTreeSet<String> {
        self.json["tables"]
            .as_object()
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The column vindexes of `table`, primary first.
    pub fn column_vindexes(&self, table: &str) -> Vec<ColumnVindex> {
        self.json["tables"][table]["column_vindexes"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|cv| ColumnVindex {
                        columns: match (&cv["column"], &cv["columns"]) {
                            (Value::String(c), _) => vec![c.clone()],
                            (_, Value::Array(cs)) => cs
                                .iter()
                                .filter_map(|c| c.as_str().map(str::to_owned))
                                .collect(),
                            _ => Vec::new(),
                        },
                        vindex: cv["name"].as_str().unwrap_or_default().to_owned(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The type of vindex `name`, if defined.
    pub fn vindex_type(&self, name: &str) -> Option<&str> {
        self.json["vindexes"][name]["type"].as_str()
    }

    /// The `auto_increment` column of `table` and its sequence.
    pub fn auto_increment(&self, table: &str) -> Option<(String, String)> {
        let ai = &self.json["tables"][table]["auto_increment"];
        Some((
            ai["column"].as_str()?.to_owned(),
            ai["sequence"].as_str()?.to_owned(),
        ))
    }
}

/// How statements must reach a table: the columns that route them (the first column of each
/// column vindex; the primary vindex's first) and the id a sequence fills on insert.
#[derive(Debug, Clone)]
pub struct TableKeys {
    pub primary: String,
    pub routing: Vec<String>,
    pub auto_increment: Option<String>,
    pub columns: BTreeSet<String>,
}

/// [`TableKeys`] of every table of the sharded keyspace.
pub fn table_keys(vschema: &VSchema, schema: &Schema) -> BTreeMap<String, TableKeys> {
    vschema
        .tables()
        .into_iter()
        .map(|table| {
            let routing: Vec<String> = vschema
                .column_vindexes(&table)
                .iter()
                .filter_map(|cv| cv.columns.first().cloned())
                .collect();
            let keys = TableKeys {
                primary: routing.first().cloned().unwrap_or_default(),
                routing,
                auto_increment: vschema.auto_increment(&table).map(|(c, _)| c),
                columns: schema
                    .tables
                    .get(&table)
                    .map(|t| t.columns.clone())
                    .unwrap_or_default(),
            };
            (table, keys)
        })
        .collect()
}
