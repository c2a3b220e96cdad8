//! Whether a statement carries its sharding key: parsed with `sqlparser` (MySQL dialect), every
//! table it names must be pinned by one of its routing columns (the VSchema's column vindexes).
//!
//! In every `SELECT` (subqueries included, each on its own), `UPDATE` and `DELETE`, a table is
//! pinned when a conjunct of the `WHERE` or of a join's `ON` is `col = v` or `col IN (…)` on one of
//! its routing columns, where `v` is a bound value, a literal, a column of a table pinned already
//! (vtgate joins by that value), a derived table's column (its own query is checked on its own)
//! or an outer query's column; `A OR B` pins a column that every branch pins (vtgate turns it into
//! `IN`). An `INSERT` must name the primary vindex column, unless a sequence fills it.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;

use sqlparser::ast::{
    BinaryOperator, Expr, FromTable, InTarget, JoinConstraint, JoinOperator, ObjectName, Select,
    SetExpr, Statement, TableFactor, TableObject, TableWithJoins, Visit, Visitor,
};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;

use crate::schema::TableKeys;

/// What the check says about a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every table it names is pinned by a routing column.
    Keyed,
    /// The tables that are not, each with why.
    Unkeyed(Vec<String>),
    /// It could not be checked (parse error, a table outside the VSchema, a shape not handled).
    Unchecked(String),
}

/// The tables of one `FROM` scope: alias (or name) → table name (`None` for a derived table).
struct Scope<'a> {
    entries: Vec<(String, Option<String>)>,
    keys: &'a BTreeMap<String, TableKeys>,
}

impl Scope<'_> {
    fn table_keys(&self, index: usize) -> Option<&TableKeys> {
        self.entries[index]
            .1
            .as_ref()
            .and_then(|t| self.keys.get(t))
    }

    /// The entry a column reference belongs to: `Some(Some(i))` in this scope, `Some(None)` an
    /// outer query's, `None` ambiguous.
    fn resolve(&self, expr: &Expr) -> Option<(Option<usize>, String)> {
        match expr {
            Expr::CompoundIdentifier(parts) if parts.len() == 2 => {
                let alias = &parts[0].value;
                let index = self.entries.iter().position(|(a, _)| a == alias);
                Some((index, parts[1].value.clone()))
            }
            Expr::Identifier(ident) => {
                let column = &ident.value;
                let owners: Vec<usize> = (0..self.entries.len())
                    .filter(|&i| {
                        self.entries.len() == 1
                            || self
                                .table_keys(i)
                                .is_some_and(|k| k.columns.contains(column))
                    })
                    .collect();
                match owners.as_slice() {
                    [] => Some((None, column.clone())),
                    [one] => Some((Some(*one), column.clone())),
                    _ => None,
                }
            }
            Expr::Nested(inner) => self.resolve(inner),
            _ => None,
        }
    }

    /// Whether `expr` is one value per execution: bound, literal, or a column of a pinned table,
    /// a derived table or an outer query.
    fn is_value(&self, expr: &Expr, pinned: &BTreeSet<usize>) -> bool {
        match expr {
            Expr::Value(_) => true,
            Expr::Nested(inner) => self.is_value(inner, pinned),
            Expr::Identifier(_) | Expr::CompoundIdentifier(_) => match self.resolve(expr) {
                Some((None, _)) => true,
                Some((Some(i), _)) => pinned.contains(&i),
                None => false,
            },
            _ => false,
        }
    }

    /// The routing columns of entry `target` that `conjunct` pins to values.
    fn pins(&self, conjunct: &Expr, target: usize, pinned: &BTreeSet<usize>) -> BTreeSet<String> {
        let Some(keys) = self.table_keys(target) else {
            return BTreeSet::new();
        };
        let column_of = |e: &Expr| match self.resolve(e) {
            Some((Some(i), column)) if i == target && keys.routing.contains(&column) => {
                Some(column)
            }
            _ => None,
        };
        match conjunct {
            Expr::Nested(inner) => self.pins(inner, target, pinned),
            Expr::BinaryOp {
                left,
                op: BinaryOperator::Eq,
                right,
            } => {
                let mut out = BTreeSet::new();
                if let Some(c) = column_of(left).filter(|_| self.is_value(right, pinned)) {
                    out.insert(c);
                }
                if let Some(c) = column_of(right).filter(|_| self.is_value(left, pinned)) {
                    out.insert(c);
                }
                out
            }
            Expr::In {
                expr,
                target: in_target,
                negated: false,
                ..
            } => {
                let values = match in_target {
                    InTarget::List(list) => list.iter().all(|v| self.is_value(v, pinned)),
                    InTarget::Subquery(_) => true, // run first; its own tables checked on their own
                    _ => false,
                };
                column_of(expr).filter(|_| values).into_iter().collect()
            }
            Expr::BinaryOp {
                op: BinaryOperator::Or,
                ..
            } => {
                let mut branches = Vec::new();
                split(conjunct, &BinaryOperator::Or, &mut branches);
                let mut common: Option<BTreeSet<String>> = None;
                for branch in branches {
                    let mut conjuncts = Vec::new();
                    split(branch, &BinaryOperator::And, &mut conjuncts);
                    let pinned_here: BTreeSet<String> = conjuncts
                        .iter()
                        .flat_map(|c| self.pins(c, target, pinned))
                        .collect();
                    common = Some(match common {
                        None => pinned_here,
                        Some(before) => before.intersection(&pinned_here).cloned().collect(),
                    });
                }
                common.unwrap_or_default()
            }
            _ => BTreeSet::new(),
        }
    }
}

/// `a OP b OP c` (through parentheses) as its operands.
fn split<'e>(expr: &'e Expr, op: &BinaryOperator, out: &mut Vec<&'e Expr>) {
    match expr {
        Expr::BinaryOp { left, op: o, right } if o == op => {
            split(left, op, out);
            split(right, op, out);
        }
        Expr::Nested(inner) if matches!(**inner, Expr::BinaryOp { op: ref o, .. } if o == op) => {
            split(inner, op, out)
        }
        _ => out.push(expr),
    }
}

fn table_name(name: &ObjectName) -> String {
    name.0
        .last()
        .and_then(|p| p.as_ident())
        .map(|i| i.value.clone())
        .unwrap_or_default()
}

fn join_on(op: &JoinOperator) -> Option<&Expr> {
    let constraint = match op {
        JoinOperator::Join(c)
        | JoinOperator::Inner(c)
        | JoinOperator::Left(c)
        | JoinOperator::LeftOuter(c)
        | JoinOperator::Right(c)
        | JoinOperator::RightOuter(c)
        | JoinOperator::CrossJoin(c)
        | JoinOperator::StraightJoin(c) => c,
        _ => return None,
    };
    match constraint {
        JoinConstraint::On(e) => Some(e),
        _ => None,
    }
}

/// Checks one scope; adds the unpinned tables to `problems` and counts the tables it saw.
fn check_scope(
    from: &[TableWithJoins],
    selection: Option<&Expr>,
    keys: &BTreeMap<String, TableKeys>,
    problems: &mut Vec<String>,
    seen: &mut usize,
) -> Result<(), String> {
    let mut scope = Scope {
        entries: Vec::new(),
        keys,
    };
    // Each conjunct with the one entry it may pin, if only one: the `ON` of an outer join
    // restricts the joined table's rows, never the rows of the side it keeps whole.
    let mut conjuncts: Vec<(&Expr, Option<usize>)> = Vec::new();
    let mut add = |factor: &TableFactor, scope: &mut Scope| -> Result<(), String> {
        match factor {
            TableFactor::Table { name, alias, .. } => {
                let table = table_name(name);
                if !keys.contains_key(&table) {
                    return Err(format!(
                        "table `{table}` is not in deploy/vitess/vschema.json: add it with its \
                         column_vindexes (and to docs/scale.md)"
                    ));
                }
                let alias = alias.as_ref().map(|a| a.name.value.clone());
                scope
                    .entries
                    .push((alias.unwrap_or_else(|| table.clone()), Some(table)));
                *seen += 1;
            }
            TableFactor::Derived { alias, .. } => {
                let alias = alias
                    .as_ref()
                    .map(|a| a.name.value.clone())
                    .unwrap_or_default();
                scope.entries.push((alias, None));
            }
            other => return Err(format!("FROM item not handled by the checker: {other}")),
        }
        Ok(())
    };
    let mut parts: Vec<&Expr> = Vec::new();
    for twj in from {
        add(&twj.relation, &mut scope)?;
        for join in &twj.joins {
            add(&join.relation, &mut scope)?;
            let joined = scope.entries.len() - 1;
            let only = match join.join_operator {
                JoinOperator::Left(_) | JoinOperator::LeftOuter(_) => Some(Some(joined)),
                // Keeps the joined table whole; pins nothing here (none in the core).
                JoinOperator::Right(_) | JoinOperator::RightOuter(_) => None,
                _ => Some(None),
            };
            if let (Some(on), Some(only)) = (join_on(&join.join_operator), only) {
                parts.clear();
                split(on, &BinaryOperator::And, &mut parts);
                conjuncts.extend(parts.iter().map(|c| (*c, only)));
            }
        }
    }
    if let Some(selection) = selection {
        parts.clear();
        split(selection, &BinaryOperator::And, &mut parts);
        conjuncts.extend(parts.iter().map(|c| (*c, None)));
    }
    let mut pinned: BTreeSet<usize> = (0..scope.entries.len())
        .filter(|&i| scope.entries[i].1.is_none())
        .collect();
    loop {
        let newly: Vec<usize> = (0..scope.entries.len())
            .filter(|i| !pinned.contains(i))
            .filter(|&i| {
                conjuncts.iter().any(|(c, only)| {
                    only.is_none_or(|only| only == i) && !scope.pins(c, i, &pinned).is_empty()
                })
            })
            .collect();
        if newly.is_empty() {
            break;
        }
        pinned.extend(newly);
    }
    for (i, (alias, table)) in scope.entries.iter().enumerate() {
        if let (false, Some(table), Some(k)) = (pinned.contains(&i), table, scope.table_keys(i)) {
            problems.push(format!(
                "`{table}`{} is not pinned by any of its routing columns {:?}",
                if alias == table {
                    String::new()
                } else {
                    format!(" (as `{alias}`)")
                },
                k.routing
            ));
        }
    }
    Ok(())
}

#[derive(Default)]
struct Selects(Vec<Select>);

impl Visitor for Selects {
    type Break = ();
    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<()> {
        self.0.push(select.clone());
        ControlFlow::Continue(())
    }
}

/// The verdict on `sql` under `keys`.
pub fn check(sql: &str, keys: &BTreeMap<String, TableKeys>) -> Verdict {
    let statements = match Parser::parse_sql(&MySqlDialect {}, sql) {
        Ok(s) => s,
        Err(e) => {
            return Verdict::Unchecked(format!("sqlparser (MySQL dialect) cannot parse it: {e}"))
        }
    };
    let [statement] = statements.as_slice() else {
        return Verdict::Unchecked(format!("{} statements in one string", statements.len()));
    };
    match check_statement(statement, keys) {
        Ok(problems) if problems.is_empty() => Verdict::Keyed,
        Ok(problems) => Verdict::Unkeyed(problems),
        Err(why) => Verdict::Unchecked(why),
    }
}

fn check_statement(
    statement: &Statement,
    keys: &BTreeMap<String, TableKeys>,
) -> Result<Vec<String>, String> {
    let mut problems = Vec::new();
    let mut seen = 0;
    match statement {
        Statement::Query(q) => {
            if !matches!(*q.body, SetExpr::Select(_) | SetExpr::SetOperation { .. }) {
                return Err(format!(
                    "query shape not handled by the checker: {}",
                    q.body
                ));
            }
        }
        Statement::Insert(insert) => {
            let TableObject::TableName(name) = &insert.table else {
                return Err("INSERT into a table function".into());
            };
            let table = table_name(name);
            let Some(k) = keys.get(&table) else {
                return Err(format!(
                    "table `{table}` is not in deploy/vitess/vschema.json: add it with its column_vindexes"
                ));
            };
            seen += 1;
            let columns: Vec<String> = insert.columns.iter().map(table_name).collect();
            if !columns.contains(&k.primary) && k.auto_increment.as_ref() != Some(&k.primary) {
                problems.push(format!(
                    "INSERT into `{table}` does not name its primary vindex column `{}`",
                    k.primary
                ));
            }
            if insert
                .source
                .as_ref()
                .is_some_and(|q| !matches!(*q.body, SetExpr::Values(_)))
            {
                return Err("INSERT … SELECT is not handled by the checker".into());
            }
        }
        Statement::Update(update) => {
            check_scope(
                std::slice::from_ref(&update.table),
                update.selection.as_ref(),
                keys,
                &mut problems,
                &mut seen,
            )?;
        }
        Statement::Delete(delete) => {
            let (FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from)) = &delete.from;
            if !delete.tables.is_empty() || delete.using.is_some() {
                return Err("multi-table DELETE is not handled by the checker".into());
            }
            check_scope(
                from,
                delete.selection.as_ref(),
                keys,
                &mut problems,
                &mut seen,
            )?;
        }
        other => {
            return Err(format!(
                "statement kind not handled by the checker: {other}"
            ))
        }
    }
    let mut selects = Selects::default();
    let _ = statement.visit(&mut selects);
    for select in &selects.0 {
        check_scope(
            &select.from,
            select.selection.as_ref(),
            keys,
            &mut problems,
            &mut seen,
        )?;
    }
    // Every table the statement names went through a scope above (none hides in a shape the
    // checker skips).
    let mut named = 0;
    let _ = sqlparser::ast::visit_relations(statement, |_| {
        named += 1;
        ControlFlow::<()>::Continue(())
    });
    if named != seen {
        return Err(format!(
            "{named} table references, {seen} checked: a shape the checker does not handle"
        ));
    }
    Ok(problems)
}
