//! The VSchema of `deploy/vitess` against the schema it shards: every table of the migrations
//! has its vindexes, every vindex and lookup table exists, ids come from sequences, and the
//! foreign keys that stay join rows of one shard.

use std::collections::BTreeSet;

use crate::schema::{migrations, read, repo_root, Schema, VSchema};

/// The keyspace's schema: the migrations, then `deploy/vitess/heart.sql`.
fn heart_schema() -> Schema {
    let mut schema = migrations();
    schema.apply(&read(&repo_root().join("deploy/vitess/heart.sql")));
    schema
}

/// Vindex types that map a value to one keyspace id (what a primary vindex must do).
fn is_unique(vindex_type: &str) -> bool {
    matches!(
        vindex_type,
        "xxhash"
            | "hash"
            | "binary"
            | "binary_md5"
            | "numeric"
            | "unicode_loose_xxhash"
            | "unicode_loose_md5"
    ) || vindex_type.ends_with("_unique")
}

fn is_lookup(vindex_type: &str) -> bool {
    vindex_type.starts_with("consistent_lookup") || vindex_type.starts_with("lookup")
}

#[test]
fn the_keyspace_is_sharded_and_has_every_table_of_the_migrations() {
    let vschema = VSchema::load("vschema.json");
    assert_eq!(vschema.json["sharded"], true);
    // Shard-local foreign keys stay in MySQL; Vitess does not manage them.
    assert_eq!(vschema.json["foreign_key_mode"], "unmanaged");
    let tables = vschema.tables();
    let migrated: BTreeSet<String> = migrations().tables.keys().cloned().collect();
    assert!(
        migrated.len() >= 14,
        "the migrations' tables were not read: {migrated:?}"
    );
    let missing: Vec<_> = migrated.difference(&tables).collect();
    assert!(
        missing.is_empty(),
        "tables of core-api/migrations/mysql missing from deploy/vitess/vschema.json: {missing:?}"
    );
    let heart = heart_schema();
    let unknown: Vec<_> = tables
        .iter()
        .filter(|t| !heart.tables.contains_key(*t))
        .collect();
    assert!(unknown.is_empty(), "vschema.json tables created by neither the migrations nor deploy/vitess/heart.sql: {unknown:?}");
}

#[test]
fn every_table_is_routed_by_a_unique_primary_vindex_on_its_own_columns() {
    let vschema = VSchema::load("vschema.json");
    let heart = heart_schema();
    for table in vschema.tables() {
        let vindexes = vschema.column_vindexes(&table);
        let primary = vindexes
            .first()
            .unwrap_or_else(|| panic!("{table}: no column_vindexes"));
        let primary_type = vschema.vindex_type(&primary.vindex).unwrap_or_default();
        assert!(
            is_unique(primary_type),
            "{table}: primary vindex {} ({primary_type}) is not unique",
            primary.vindex
        );
        let columns = &heart.tables[&table].columns;
        for cv in &vindexes {
            assert!(
                vschema.vindex_type(&cv.vindex).is_some(),
                "{table}: vindex {} is not defined under \"vindexes\"",
                cv.vindex
            );
            assert!(
                !cv.columns.is_empty(),
                "{table}: a column vindex without columns"
            );
            for column in &cv.columns {
                assert!(
                    columns.contains(column),
                    "{table}: vindex {} on unknown column {column}",
                    cv.vindex
                );
            }
        }
    }
}

#[test]
fn every_vindex_is_used_and_every_lookup_has_its_table_and_owner() {
    let vschema = VSchema::load("vschema.json");
    let heart = heart_schema();
    let tables = vschema.tables();
    let vindexes = vschema.json["vindexes"].as_object().unwrap();
    let lookup_sql = heart_lookup_tables();
    for (name, vindex) in vindexes {
        let users: Vec<String> = tables
            .iter()
            .filter(|t| {
                vschema
                    .column_vindexes(t)
                    .iter()
                    .any(|cv| &cv.vindex == name)
            })
            .cloned()
            .collect();
        assert!(
            !users.is_empty(),
            "vindex {name} is defined but no table uses it"
        );
        let vindex_type = vindex["type"].as_str().unwrap_or_default();
        if !is_lookup(vindex_type) {
            continue;
        }
        let params = &vindex["params"];
        let qualified = params["table"].as_str().unwrap_or_default();
        let lookup = qualified.strip_prefix("heart.").unwrap_or_else(|| {
            panic!("{name}: lookup table {qualified:?} is not in keyspace heart")
        });
        assert!(
            lookup_sql.contains(lookup),
            "{name}: lookup table {lookup} is not created in deploy/vitess/heart.sql"
        );
        assert!(
            tables.contains(lookup),
            "{name}: lookup table {lookup} has no entry in vschema.json"
        );
        let from: Vec<String> = params["from"]
            .as_str()
            .unwrap_or_default()
            .split(',')
            .map(|c| c.trim().to_owned())
            .collect();
        let to = params["to"].as_str().unwrap_or_default();
        let lookup_columns = &heart.tables[lookup].columns;
        for column in from.iter().map(String::as_str).chain([to]) {
            assert!(
                lookup_columns.contains(column),
                "{name}: {lookup} has no column {column}"
            );
        }
        // The lookup table is found by its first from-column.
        assert_eq!(
            vschema.column_vindexes(lookup)[0].columns[0],
            from[0],
            "{name}: {lookup} must be sharded by {}",
            from[0]
        );
        let owner = vindex["owner"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no owner"));
        assert!(
            vschema
                .column_vindexes(owner)
                .iter()
                .any(|cv| &cv.vindex == name && cv.columns == from),
            "{name}: its owner {owner} does not carry it on {from:?}"
        );
    }
}

/// The tables `deploy/vitess/heart.sql` creates.
fn heart_lookup_tables() -> BTreeSet<String> {
    let mut schema = Schema::default();
    schema.apply(&read(&repo_root().join("deploy/vitess/heart.sql")));
    schema.tables.keys().cloned().collect()
}

#[test]
fn auto_increment_ids_come_from_sequences_of_the_unsharded_keyspace() {
    let vschema = VSchema::load("vschema.json");
    let seq = VSchema::load("vschema-seq.json");
    assert_eq!(seq.json["sharded"], false);
    let mut seq_sql = Schema::default();
    seq_sql.apply(&read(&repo_root().join("deploy/vitess/heart_seq.sql")));
    let mut used = BTreeSet::new();
    for (table, t) in &migrations().tables {
        let Some(column) = &t.auto_increment else {
            continue;
        };
        let (ai_column, sequence) = vschema
            .auto_increment(table)
            .unwrap_or_else(|| panic!("{table}.{column} is AUTO_INCREMENT: give it an auto_increment sequence in vschema.json"));
        assert_eq!(&ai_column, column, "{table}");
        let name = sequence
            .strip_prefix("heart_seq.")
            .unwrap_or_else(|| panic!("{table}: sequence {sequence} is not in keyspace heart_seq"));
        assert_eq!(
            seq.json["tables"][name]["type"], "sequence",
            "{name} in vschema-seq.json"
        );
        assert!(
            seq_sql.tables.get(name).is_some_and(|t| t.sequence),
            "{name}: not created with COMMENT 'vitess_sequence' in deploy/vitess/heart_seq.sql"
        );
        used.insert(name.to_owned());
    }
    assert_eq!(
        used,
        seq.tables(),
        "every sequence of vschema-seq.json serves a table"
    );
}

#[test]
fn foreign_keys_left_join_rows_of_one_shard() {
    let vschema = VSchema::load("vschema.json");
    let primary = |table: &str| vschema.column_vindexes(table).into_iter().next();
    // A child row lives with its parent when both are placed by the same vindex on the key's
    // columns: one hash of equal values, or one lookup owned by the parent.
    let shard_local = |child: &str, fk: &crate::schema::ForeignKey| {
        let Some(child_primary) = primary(child) else {
            return false;
        };
        if child_primary.columns != [fk.column.clone()] {
            return false;
        }
        let vindex_type = vschema
            .vindex_type(&child_primary.vindex)
            .unwrap_or_default();
        if is_lookup(vindex_type) {
            vschema.json["vindexes"][&child_primary.vindex]["owner"] == fk.parent.as_str()
        } else {
            primary(&fk.parent).is_some_and(|p| {
                p.vindex == child_primary.vindex && p.columns == [fk.parent_column.clone()]
            })
        }
    };
    let before = migrations();
    let after = heart_schema();
    let mut checked = 0;
    for (table, t) in &after.tables {
        for (name, fk) in &t.foreign_keys {
            checked += 1;
            assert!(
                shard_local(table, fk),
                "{table}.{name} ({} → {}.{}) would cross shards: drop it in deploy/vitess/heart.sql",
                fk.column,
                fk.parent,
                fk.parent_column
            );
        }
    }
    assert!(checked >= 5, "the foreign keys were not read");
    // heart.sql drops only what had to go.
    for (table, t) in &before.tables {
        for (name, fk) in &t.foreign_keys {
            if !after.tables[table].foreign_keys.contains_key(name) {
                assert!(
                    !shard_local(table, fk),
                    "{table}.{name} is shard-local: heart.sql need not drop it"
                );
            }
        }
    }
}
