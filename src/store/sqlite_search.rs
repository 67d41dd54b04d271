//! Compiling a parsed search into SQLite SQL, and choosing how to run it: which index
//! drives the search, how the total is counted, and how the page is read.

use super::sqlite_index::ScopeCode;
use super::sqlite_read::{query_rows, SqlBuilder};
use super::StoreResult;
use super::{field_kind, normalize_words};
use crate::domain::fields::{self, FieldKind};
use crate::domain::query::{Cond, Query, SearchRequest, TextMode};

/// What a search runs over: the assets, or the records of one generic table.
pub(super) struct Target<'a> {
    values: &'static str,
    /// The partial index over numeric values.
    n_index: &'static str,
    kind: Box<dyn Fn(&str) -> FieldKind + Send + Sync + 'a>,
    assets: bool,
    /// For assets: the scope whose value rows are searched (catalog and live/trash).
    scope: Option<ScopeCode>,
    /// Whether the full-text index holds this scope (live assets only).
    fts: bool,
    /// The catalog, when the full-text index also holds other catalogs' assets: its
    /// matches are then joined to their rows and kept to this one.
    fts_catalog: Option<&'a str>,
    /// Whether value rows of trashed assets may still be in the scope (`trash_pending`):
    /// they are then left out row by row.
    unswept: bool,
}

impl<'a> Target<'a> {
    /// `shared`: the catalog, when the database holds more than one (see `fts_catalog`).
    pub(super) fn assets(scope: ScopeCode, live: bool, shared: Option<&'a str>) -> Self {
        Target {
            fts_catalog: shared,
            values: "asset_values",
            n_index: "asset_values_n",
            kind: Box::new(|f| field_kind(f).unwrap_or(FieldKind::Keyword)),
            assets: true,
            scope: Some(scope),
            fts: live,
            unswept: false,
        }
    }
    /// Leaves out value rows of trashed assets not yet moved out of the live scope.
    pub(super) fn excluding_unswept(mut self, unswept: bool) -> Self {
        self.unswept = unswept;
        self
    }
    pub(super) fn records(searchtype: &'a str) -> Self {
        Target {
            values: "record_values",
            n_index: "record_values_n",
            scope: None,
            fts: false,
            fts_catalog: None,
            unswept: false,
            kind: Box::new(move |f| match f {
                fields::DESCRIPTION => FieldKind::Text,
                _ => fields::record_field_kind(searchtype, f),
            }),
            assets: false,
        }
    }
    /// Fields held in a column of the row itself.
    fn direct(&self, field: &str) -> Option<&'static str> {
        match field {
            "id" => Some("a.id"),
            "sourcepath" if self.assets => Some("a.sourcepath"),
            fields::DESCRIPTION => Some("a.fulltext"),
            _ => None,
        }
    }
}

/// Sort keys read from a joined value row (single-valued fields), so SQLite can walk an
/// index in order and stop at the page; multi-valued fields sort by their smallest value.
fn joinable(kind: FieldKind) -> bool {
    !kind.is_multi() && kind != FieldKind::MultiLang
}

/// Fields every asset has (set on create, read-only): sorting by them needs no outer join.
fn always_present(target: &Target, field: &str) -> bool {
    target.assets && matches!(field, "assetaddeddate" | "recordmodificationdate")
}

/// Whether the whole scope is sorted by an always-present field: then the rows are read
/// in the order of that field's index and the scan stops at the page.
fn index_ordered(req: &SearchRequest, target: &Target) -> bool {
    req.query == Query::All
        && req
            .sort
            .first()
            .is_some_and(|k| always_present(target, &k.field) && target.kind.as_ref()(&k.field).is_numeric())
}

pub(super) fn push_from(qb: &mut SqlBuilder, table: &str, req: &SearchRequest, target: &Target) {
    qb.push(format!(" FROM {table} a"));
    let v = target.values;
    for (i, key) in req.sort.iter().enumerate() {
        if i == 0 && index_ordered(req, target) {
            qb.push(format!(
                " JOIN {v} s0 INDEXED BY {} ON s0.seq = a.seq AND s0.n IS NOT NULL AND ",
                target.n_index
            ));
            push_scope(qb, target, "s0");
            qb.push("s0.field = ").push_bind(key.field.clone());
        } else if target.direct(&key.field).is_none() && joinable(target.kind.as_ref()(&key.field)) {
            // Without statistics SQLite may probe the (field, n) index per row; the
            // (seq, field) index finds the one value row directly.
            qb.push(format!(
                " LEFT JOIN {v} s{i} INDEXED BY {v}_seq ON s{i}.seq = a.seq AND s{i}.field = "
            ))
            .push_bind(key.field.clone());
        }
    }
}

pub(super) fn push_order_and_page(qb: &mut SqlBuilder, req: &SearchRequest, target: &Target, paged: bool) {
    qb.push(" ORDER BY ");
    let ordered = index_ordered(req, target);
    for (i, key) in req.sort.iter().enumerate() {
        let kind = target.kind.as_ref()(&key.field);
        let col = if kind.is_numeric() { "n" } else { "v" };
        match target.direct(&key.field) {
            _ if i == 0 && ordered => {
                qb.push("s0.n");
            }
            Some(direct) if key.field != fields::DESCRIPTION => {
                qb.push(direct);
            }
            _ if joinable(kind) => {
                qb.push(format!("s{i}.{col} IS NULL, s{i}.{col}"));
            }
            _ => {
                qb.push(format!(
                    "(SELECT MIN(x.{col}) FROM {} x WHERE x.seq = a.seq AND x.field = ",
                    target.values
                ))
                .push_bind(key.field.clone())
                .push(")");
            }
        }
        qb.push(if key.descending { " DESC, " } else { " ASC, " });
    }
    // The tie-break follows the index when the scan is index-ordered.
    qb.push(if ordered && req.sort.len() == 1 && req.sort[0].descending {
        "s0.seq DESC"
    } else {
        "a.seq DESC"
    });
    if paged {
        qb.push(" LIMIT ")
            .push_bind(req.hits_per_page as i64)
            .push(" OFFSET ")
            .push_bind((req.page as i64 - 1) * req.hits_per_page as i64);
    }
}

/// Restricts value rows to the target's scope (assets), followed by ` AND `.
pub(super) fn push_scope(qb: &mut SqlBuilder, target: &Target, alias: &str) {
    if let Some(scope) = target.scope {
        qb.push(format!("{alias}.scope = ")).push_bind(scope).push(" AND ");
        if target.unswept {
            qb.push(format!(
                "NOT EXISTS (SELECT 1 FROM trash_pending p WHERE p.seq = {alias}.seq) AND "
            ));
        }
    }
}

/// `*` in a value is a wildcard; LIKE's own wildcards are escaped.
fn like_pattern(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '%' | '_' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '*' => out.push('%'),
            c => out.push(c),
        }
    }
    out
}

pub(super) fn push_query(qb: &mut SqlBuilder, q: &Query, target: &Target) {
    match q {
        Query::All => {
            qb.push("1 = 1");
        }
        Query::And(parts) | Query::Or(parts) => {
            let joiner = if matches!(q, Query::And(_)) { " AND " } else { " OR " };
            qb.push("(");
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    qb.push(joiner);
                }
                push_query(qb, p, target);
            }
            qb.push(")");
        }
        Query::Not(inner) => {
            qb.push("NOT ");
            push_query(qb, inner, target);
        }
        Query::Cond { field, cond } => push_cond(qb, field, cond, target),
    }
}

fn push_text_test(qb: &mut SqlBuilder, col: &str, analysed: bool, keep_case: bool, mode: TextMode, value: &str) {
    if analysed {
        let words = normalize_words(&value.replace('*', " \u{1} "));
        let words = words.trim().replace('\u{1}', "*");
        let pat = like_pattern(&words);
        let pat = match mode {
            TextMode::Matches => format!("% {pat} %"),
            TextMode::Exact => format!(" {pat} "),
            // A word of the text starts so (EMDB's phrase prefix on analysed fields).
            TextMode::StartsWith => format!("% {pat}%"),
            TextMode::Contains => format!("%{pat}%"),
        };
        qb.push(format!("{col} LIKE ")).push_bind(pat).push(" ESCAPE '\\'");
        return;
    }
    // Ids (of assets and of list values) and source paths keep their case; other
    // indexed values are lower-cased.
    let v = if keep_case {
        value.to_string()
    } else {
        value.to_lowercase()
    };
    match mode {
        TextMode::Matches | TextMode::Exact if !v.contains('*') => {
            qb.push(format!("{col} = ")).push_bind(v);
        }
        _ => {
            let pat = like_pattern(&v);
            let pat = match mode {
                TextMode::StartsWith => format!("{pat}%"),
                TextMode::Contains => format!("%{pat}%"),
                _ => pat,
            };
            qb.push(format!("{col} LIKE ")).push_bind(pat).push(" ESCAPE '\\'");
        }
    }
}

/// An FTS5 query for words or phrases (`prefix`: the last word may continue), or `None`
/// when the pattern needs LIKE (inner wildcards).
pub(super) fn fts_query(phrases: &[&str], prefix: bool) -> Option<String> {
    let mut parts = Vec::new();
    for p in phrases {
        let trimmed = if prefix { p.trim_end_matches('*') } else { p };
        if trimmed.contains('*') {
            return None;
        }
        let words = normalize_words(trimmed);
        let words = words.trim();
        if words.is_empty() {
            continue;
        }
        // Tokens are alphanumeric after normalising, so quoting them is safe.
        parts.push(format!(
            "\"{words}\"{}",
            if prefix || p.ends_with('*') { "*" } else { "" }
        ));
    }
    (!parts.is_empty()).then(|| parts.join(" AND "))
}

fn push_cond(qb: &mut SqlBuilder, field: &str, cond: &Cond, target: &Target) {
    let kind = target.kind.as_ref()(field);
    let direct = target.direct(field);
    let analysed = matches!(kind, FieldKind::Text | FieldKind::MultiLang) && field != "id";
    let values = target.values;
    // `a.seq IN (...)` lets SQLite build the matching set once from the covering index,
    // instead of probing per asset row.
    let set_open = |qb: &mut SqlBuilder| {
        qb.push(format!("a.seq IN (SELECT x.seq FROM {values} x WHERE "));
        push_scope(qb, target, "x");
        qb.push("x.field = ").push_bind(field.to_string()).push(" AND ");
    };
    let fts = target.fts && field == fields::DESCRIPTION;
    let push_fts = |qb: &mut SqlBuilder, q: String| {
        qb.push("a.seq IN (SELECT rowid FROM asset_fts WHERE asset_fts MATCH ")
            .push_bind(q);
        push_fts_unswept(qb, target, "rowid");
        qb.push(")");
    };
    let text = |qb: &mut SqlBuilder, mode: TextMode, value: &str| {
        if fts && matches!(mode, TextMode::Matches | TextMode::StartsWith) {
            if let Some(q) = fts_query(&[value], mode == TextMode::StartsWith) {
                return push_fts(qb, q);
            }
        }
        match direct {
            Some(col) => push_text_test(qb, col, analysed, true, mode, value),
            None => {
                set_open(qb);
                push_text_test(qb, "x.v", analysed, kind.list_table().is_some(), mode, value);
                qb.push(")");
            }
        }
    };
    match cond {
        Cond::Text { mode, value } => text(qb, *mode, value),
        Cond::Freeform(words) => {
            let phrases: Vec<&str> = words.iter().map(String::as_str).collect();
            if let Some(q) = fts.then(|| fts_query(&phrases, false)).flatten() {
                return push_fts(qb, q);
            }
            qb.push("(");
            for (i, w) in words.iter().enumerate() {
                if i > 0 {
                    qb.push(" AND ");
                }
                text(qb, TextMode::Matches, w);
            }
            qb.push(")");
        }
        Cond::Exists | Cond::Missing => {
            if matches!(cond, Cond::Missing) {
                qb.push("NOT ");
            }
            if direct.is_some() {
                qb.push("(1 = 1)");
            } else {
                set_open(qb);
                qb.push("1 = 1)");
            }
        }
        Cond::Range { min, max } => {
            set_open(qb);
            qb.push("x.n IS NOT NULL");
            if let Some(lo) = min {
                qb.push(" AND x.n >= ").push_bind(*lo);
            }
            if let Some(hi) = max {
                qb.push(" AND x.n <= ").push_bind(*hi);
            }
            qb.push(")");
        }
    }
}

/// A search one index answers alone: the value rows of one field passing a test (or
/// any of several tests on that field, as `orsgroup` sends), or the full-text index.
/// Its matches are counted, paged and faceted without visiting the assets table.
pub(super) struct Driver<'q> {
    source: Source<'q>,
    /// Entries come in asset order, so the newest matches are read backwards and the
    /// scan stops at the page.
    pub(super) ordered: bool,
    /// One asset may match by several rows (a multi-valued field).
    repeats: bool,
    /// Several whole values of one field (`orsgroup`): each value's entries are in
    /// asset order, so a page is a merge of each value's newest entries, and the total
    /// is counted value by value (see `union_count`).
    union: bool,
}

enum Source<'q> {
    Values { field: &'q str, conds: Vec<&'q Cond> },
    Fts(String),
}

fn analysed(kind: FieldKind, field: &str) -> bool {
    matches!(kind, FieldKind::Text | FieldKind::MultiLang) && field != "id"
}

/// A whole-value comparison: its rows are one range of the (scope, field, v) index.
fn is_equality(cond: &Cond, kind: FieldKind, field: &str) -> bool {
    matches!(cond, Cond::Text { mode: TextMode::Matches | TextMode::Exact, value } if !value.contains('*'))
        && !analysed(kind, field)
}

/// The driver of a query, when one index can answer all of it.
pub(super) fn driver<'q>(q: &'q Query, target: &Target) -> Option<Driver<'q>> {
    if !target.assets {
        return None;
    }
    match q {
        Query::Cond { field, cond } => single_driver(field, cond, target),
        Query::Or(parts) => {
            let mut field = None;
            let mut conds = Vec::new();
            for p in parts {
                let Query::Cond { field: f, cond } = p else {
                    return None;
                };
                let kind = target.kind.as_ref()(f);
                if target.direct(f).is_some() || !is_equality(cond, kind, f) || field.is_some_and(|x| x != f) {
                    return None;
                }
                field = Some(f.as_str());
                conds.push(cond);
            }
            let field = field?;
            Some(Driver {
                source: Source::Values { field, conds },
                ordered: true,
                repeats: !joinable(target.kind.as_ref()(field)),
                union: true,
            })
        }
        _ => None,
    }
}

fn single_driver<'q>(field: &'q str, cond: &'q Cond, target: &Target) -> Option<Driver<'q>> {
    if target.fts && field == fields::DESCRIPTION {
        let q = match cond {
            Cond::Text {
                mode: mode @ (TextMode::Matches | TextMode::StartsWith),
                value,
            } => fts_query(&[value], *mode == TextMode::StartsWith)?,
            Cond::Freeform(words) => fts_query(&words.iter().map(String::as_str).collect::<Vec<_>>(), false)?,
            _ => return None,
        };
        return Some(Driver {
            source: Source::Fts(q),
            ordered: true,
            repeats: false,
            union: false,
        });
    }
    if target.direct(field).is_some() {
        return None;
    }
    if !super::value_drivable(cond) {
        return None;
    }
    let kind = target.kind.as_ref()(field);
    let eq = is_equality(cond, kind, field);
    Some(Driver {
        source: Source::Values {
            field,
            conds: vec![cond],
        },
        ordered: eq,
        repeats: !eq && !joinable(kind),
        union: false,
    })
}

/// The test one value row `x` must pass for a condition a driver holds.
fn push_row_test(qb: &mut SqlBuilder, field: &str, cond: &Cond, target: &Target) {
    let kind = target.kind.as_ref()(field);
    let keep_case = kind.list_table().is_some();
    match cond {
        Cond::Text { mode, value } => push_text_test(qb, "x.v", analysed(kind, field), keep_case, *mode, value),
        Cond::Freeform(words) => {
            let w = words.first().map(String::as_str).unwrap_or("");
            push_text_test(qb, "x.v", analysed(kind, field), keep_case, TextMode::Matches, w)
        }
        Cond::Range { min, max } => {
            qb.push("x.n IS NOT NULL");
            if let Some(lo) = min {
                qb.push(" AND x.n >= ").push_bind(*lo);
            }
            if let Some(hi) = max {
                qb.push(" AND x.n <= ").push_bind(*hi);
            }
        }
        Cond::Exists | Cond::Missing => {
            qb.push("1 = 1");
        }
    }
}

fn push_value_tests(qb: &mut SqlBuilder, field: &str, conds: &[&Cond], target: &Target) {
    qb.push("x.field = ").push_bind(field.to_string()).push(" AND (");
    for (i, c) in conds.iter().enumerate() {
        if i > 0 {
            qb.push(" OR ");
        }
        qb.push("(");
        push_row_test(qb, field, c, target);
        qb.push(")");
    }
    qb.push(")");
}

/// `SELECT ... AS seq` of the driver's matches, newest first when `page` is given.
pub(super) fn push_driver(qb: &mut SqlBuilder, d: &Driver, target: &Target, page: Option<(i64, i64)>) {
    if let (true, Some((limit, offset)), Source::Values { field, conds }) = (d.union, page, &d.source) {
        // The page's assets are among the newest `offset + limit` entries of some value:
        // each value's index range is read backwards that far, and the union (which
        // drops an asset matching twice) merged in asset order.
        for (i, c) in conds.iter().enumerate() {
            if i > 0 {
                qb.push(" UNION ");
            }
            qb.push(format!(
                "SELECT seq FROM (SELECT x.seq AS seq FROM {} x WHERE ",
                target.values
            ));
            push_scope(qb, target, "x");
            push_value_tests(qb, field, std::slice::from_ref(c), target);
            qb.push(" ORDER BY x.seq DESC LIMIT ")
                .push_bind(limit + offset)
                .push(")");
        }
        qb.push(" ORDER BY seq DESC LIMIT ")
            .push_bind(limit)
            .push(" OFFSET ")
            .push_bind(offset);
        return;
    }
    let order = match &d.source {
        Source::Fts(q) => match target.fts_catalog {
            None => {
                qb.push("SELECT rowid AS seq FROM asset_fts WHERE asset_fts MATCH ")
                    .push_bind(q.clone());
                push_fts_unswept(qb, target, "rowid");
                "rowid"
            }
            Some(catalog) => {
                qb.push(
                    "SELECT asset_fts.rowid AS seq FROM asset_fts JOIN assets fa ON fa.seq = asset_fts.rowid \
                     WHERE asset_fts MATCH ",
                )
                .push_bind(q.clone())
                .push(" AND fa.catalog = ")
                .push_bind(catalog);
                push_fts_unswept(qb, target, "asset_fts.rowid");
                "asset_fts.rowid"
            }
        },
        Source::Values { field, conds } => {
            qb.push(format!("SELECT x.seq AS seq FROM {} x WHERE ", target.values));
            push_scope(qb, target, "x");
            push_value_tests(qb, field, conds, target);
            "x.seq"
        }
    };
    if let Some((limit, offset)) = page {
        qb.push(format!(" ORDER BY {order} DESC LIMIT "))
            .push_bind(limit)
            .push(" OFFSET ")
            .push_bind(offset);
    }
}

/// Leaves out of full-text matches the trashed assets still in the index (listed in
/// `trash_pending` until the writer's sweep removes their text).
fn push_fts_unswept(qb: &mut SqlBuilder, target: &Target, rowid: &str) {
    if target.unswept {
        qb.push(format!(" AND {rowid} NOT IN (SELECT seq FROM trash_pending)"));
    }
}

/// The one word a full-text driver looks for, when it is a single whole word (its total
/// may then be a maintained count, less the unswept trashed assets that hold it).
pub(super) fn fts_single_word<'d>(d: &'d Driver, target: &Target) -> Option<&'d str> {
    // The counts are of the whole index, every catalog's assets.
    let (Source::Fts(q), None) = (&d.source, target.fts_catalog) else {
        return None;
    };
    let word = q.strip_prefix('"')?.strip_suffix('"')?;
    (!word.is_empty() && word.bytes().all(|b| b.is_ascii_alphanumeric())).then_some(word)
}

/// The value an equality compares with, as stored in the index.
fn equality_key(field: &str, cond: &Cond, target: &Target) -> Option<String> {
    let Cond::Text { value, .. } = cond else {
        return None;
    };
    Some(if target.kind.as_ref()(field).list_table().is_some() {
        value.clone()
    } else {
        value.to_lowercase()
    })
}

/// The total of a `union` driver on a single-valued field without collecting its matches:
/// an asset has one row for the field, so the values' assets are disjoint and each value's
/// index range is counted. On a multi-valued field (`None`: SQL counts the distinct
/// assets) a correlated probe per entry, to skip assets already counted under another
/// value, cost more than `COUNT(DISTINCT)` over all the entries (measured).
pub(super) fn union_count(c: &rusqlite::Connection, d: &Driver<'_>, target: &Target<'_>) -> StoreResult<Option<u64>> {
    let (true, false, Source::Values { field, conds }) = (d.union, d.repeats, &d.source) else {
        return Ok(None);
    };
    let mut keys: Vec<String> = Vec::with_capacity(conds.len());
    for c in conds {
        let Some(k) = equality_key(field, c, target) else {
            return Ok(None);
        };
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let range = |qb: &mut SqlBuilder, key: &str| {
        qb.push(format!("SELECT COUNT(*) FROM {} x WHERE ", target.values));
        push_scope(qb, target, "x");
        qb.push("x.field = ")
            .push_bind(field.to_string())
            .push(" AND x.v = ")
            .push_bind(key.to_string());
    };
    let mut qb = SqlBuilder::new("SELECT ");
    for (i, k) in keys.iter().enumerate() {
        qb.push(if i > 0 { ", (" } else { "(" });
        range(&mut qb, k);
        qb.push(")");
    }
    let counts = query_rows(c, &qb, |r| {
        (0..keys.len())
            .map(|i| Ok(r.get::<_, i64>(i)?.max(0) as u64))
            .sum::<StoreResult<u64>>()
    })?;
    Ok(Some(counts.into_iter().sum()))
}

/// Whether one asset may be among a driver's rows more than once.
pub(super) fn driver_repeats(d: &Driver) -> bool {
    d.repeats
}

/// Counts the assets a driver matches.
pub(super) fn push_driver_count(qb: &mut SqlBuilder, d: &Driver, target: &Target) {
    qb.push(if d.repeats {
        "SELECT COUNT(DISTINCT seq) FROM ("
    } else {
        "SELECT COUNT(*) FROM ("
    });
    push_driver(qb, d, target, None);
    qb.push(")");
}

/// How to read a page of a driver's matches in asset order (newest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PageRead {
    /// Walk the driver's index backwards and stop at the page.
    Backwards,
    /// Collect the matches, then read the newest.
    Collect,
    /// Walk the assets newest first and test each, until the page is full: cheaper
    /// than collecting when matches are common.
    Probe,
}

pub(super) fn page_read(d: &Driver, matches: u64, scope_total: u64, wanted: u64) -> PageRead {
    if d.ordered {
        PageRead::Backwards
    } else if matches > 0 && (wanted as f64) * (scope_total as f64) < (matches as f64) * (matches as f64) {
        // Probing reads about wanted * total / matches assets; collecting reads every match.
        PageRead::Probe
    } else {
        PageRead::Collect
    }
}

/// `a.seq IN (...)` of a driver's page (Backwards) or of all its matches (Collect).
pub(super) fn push_driver_membership(qb: &mut SqlBuilder, d: &Driver, target: &Target, page: Option<(i64, i64)>) {
    qb.push("a.seq IN (");
    push_driver(qb, d, target, page);
    qb.push(")");
}

/// `EXISTS (...)`: the asset row `a` has a value row passing the driver's tests.
pub(super) fn push_driver_probe(qb: &mut SqlBuilder, d: &Driver, target: &Target) {
    match &d.source {
        Source::Values { field, conds } => {
            qb.push(format!(
                "EXISTS (SELECT 1 FROM {v} x INDEXED BY {v}_seq WHERE x.seq = a.seq AND ",
                v = target.values
            ));
            push_value_tests(qb, field, conds, target);
            qb.push(")");
        }
        Source::Fts(_) => push_driver_membership(qb, d, target, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fts_queries_quote_normalised_words() {
        assert_eq!(fts_query(&["Big bird"], false).as_deref(), Some("\"big bird\""));
        assert_eq!(
            fts_query(&["red", "\"x\" OR y"], false).as_deref(),
            Some("\"red\" AND \"x or y\"")
        );
        assert_eq!(fts_query(&["wor"], true).as_deref(), Some("\"wor\"*"));
        assert_eq!(fts_query(&["wo*rd"], false), None);
        assert_eq!(fts_query(&["!!!"], false), None);
    }
}

/// The planner's shortcuts must answer what the in-memory evaluator does
/// (`store::planner_check`): once with one catalog (the word-count shortcuts), once with
/// two (full-text matches joined back to their catalog).
#[cfg(test)]
mod planner_agrees {
    use crate::store::planner_check::writes_then_searches;
    use crate::store::sqlite::SqliteStore;
    use crate::store::MetaStore;

    #[tokio::test]
    async fn shortcuts_match_the_evaluator() {
        for other_catalog in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let store = SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
            store.migrate().await.unwrap();
            writes_then_searches(&store, other_catalog).await;
        }
    }
}

/// Deletes leave their value rows in the live scope (`trash_pending`) until the writer
/// idles; searches must not tell the difference, and the sweep must get there.
#[cfg(test)]
mod trash_sweep {
    use crate::domain::asset::Asset;
    use crate::domain::query;
    use crate::ops::assets::field_info;
    use crate::store::sqlite::SqliteStore;
    use crate::store::{MetaStore, Scope};
    use serde_json::json;

    fn search(kw: &str) -> crate::domain::query::SearchRequest {
        let body = json!({"hitsperpage": "100", "query": {"terms": [{"field": "keywords", "operation": "matches", "value": kw}]}});
        query::parse_search(body.as_object().unwrap(), "asset", &field_info).unwrap()
    }

    fn unswept(db: &std::path::Path) -> (i64, i64) {
        let c = rusqlite::Connection::open(db).unwrap();
        let listed = c
            .query_row("SELECT COUNT(*) FROM trash_pending", [], |r| r.get(0))
            .unwrap();
        let live_rows = c
            .query_row(
                "SELECT COUNT(*) FROM asset_values v JOIN assets a ON a.seq = v.seq WHERE a.state = 'trashed' AND v.scope % 2 = 0",
                [],
                |r| r.get(0),
            )
            .unwrap();
        (listed, live_rows)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deletes_are_swept_when_the_writer_idles() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        let store = SqliteStore::open(&db).await.unwrap();
        store.migrate().await.unwrap();
        let assets: Vec<Asset> = (0..50)
            .map(|i| {
                let mut fields = serde_json::Map::new();
                fields.insert("keywords".into(), json!(["all", format!("k{}", i % 5)]));
                Asset {
                    id: format!("s{i}"),
                    sourcepath: format!("s/{i}.jpg"),
                    fields,
                    original: None,
                }
            })
            .collect();
        store.insert_assets_bulk("assets", &assets).await.unwrap();
        let trashed: Vec<String> = (0..20).map(|i| format!("s{i}")).collect();
        let done = store.trash_assets("assets", &trashed, "admin", &[]).await.unwrap();
        assert_eq!(done.len(), 20);
        // Listed, rows not moved yet (the writer has not been idle for long), yet gone
        // from searches and counts.
        let (listed, _) = unswept(&db);
        assert_eq!(listed, 20);
        let page = store
            .search_assets("assets", &search("all"), Scope::Live)
            .await
            .unwrap();
        assert_eq!((page.total, page.hits.len()), (30, 30));
        let page = store.search_assets("assets", &search("k0"), Scope::Live).await.unwrap();
        assert_eq!(page.total, 6);
        // Restored before the sweep: its rows never left the live scope.
        store.restore_assets("assets", &["s0".to_string()]).await.unwrap();
        let page = store.search_assets("assets", &search("k0"), Scope::Live).await.unwrap();
        assert_eq!(page.total, 7);
        // The writer idles: everything is moved and the list is empty.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while unswept(&db) != (0, 0) && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(unswept(&db), (0, 0));
        let page = store
            .search_assets("assets", &search("all"), Scope::Live)
            .await
            .unwrap();
        assert_eq!(page.total, 31);
        // Full-text segments are merged by the writer when idle, not at commit.
        let c = rusqlite::Connection::open(&db).unwrap();
        let automerge: i64 = c
            .query_row("SELECT v FROM asset_fts_config WHERE k = 'automerge'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(automerge, 0);
        let body = json!({"query": {"terms": [{"field": "description", "operation": "freeform", "value": "k1"}]}});
        let words = query::parse_search(body.as_object().unwrap(), "asset", &field_info).unwrap();
        let page = store.search_assets("assets", &words, Scope::Live).await.unwrap();
        assert_eq!(page.total, 6, "the ten k1 assets less the four trashed");
        // A search of the trash right after a delete has the sweep finished first.
        let more: Vec<String> = (20..25).map(|i| format!("s{i}")).collect();
        store.trash_assets("assets", &more, "admin", &[]).await.unwrap();
        let page = store
            .search_assets("assets", &search("all"), Scope::Trash)
            .await
            .unwrap();
        assert_eq!(page.total, 24);
        assert_eq!(unswept(&db), (0, 0));
    }
    /// The maintained counts a store keeps (word counts, facet counts, totals), without
    /// the zero rows a removal leaves.
    fn kept_counts(db: &std::path::Path) -> Vec<String> {
        let c = rusqlite::Connection::open(db).unwrap();
        let mut out = Vec::new();
        for sql in [
            "SELECT 'w ' || word || ' ' || n || ' ' || unsure FROM fts_words WHERE n <> 0 OR unsure <> 0 ORDER BY word",
            "SELECT 'f ' || catalog || ' ' || field || ' ' || v || ' ' || n FROM facet_counts WHERE n <> 0 ORDER BY 1",
            "SELECT 'a ' || scope || ' ' || n FROM asset_counts WHERE n <> 0 ORDER BY 1",
        ] {
            let mut st = c.prepare(sql).unwrap();
            out.extend(st.query_map([], |r| r.get::<_, String>(0)).unwrap().map(|r| r.unwrap()));
        }
        out
    }

    fn asset(i: usize) -> Asset {
        let mut fields = serde_json::Map::new();
        fields.insert("keywords".into(), json!(["all", format!("k{}", i % 5)]));
        fields.insert(
            "assettype".into(),
            json!(if i.is_multiple_of(2) { "photo" } else { "video" }),
        );
        fields.insert("longcaption".into(), json!(format!("harbor boat{}", i % 3)));
        Asset {
            id: format!("s{i}"),
            sourcepath: format!("s/{i}.jpg"),
            fields,
            original: None,
        }
    }

    /// A delete finishes its move to the trash later (`TrashSweeper`): until then every
    /// search, total and facet count must already leave it out, a restore or a purge in
    /// between must leave the counts right, and after the sweep the kept counts must be
    /// those of a store that only ever held the survivors.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unswept_deletes_are_out_of_every_count_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        let store = SqliteStore::open(&db).await.unwrap();
        store.migrate().await.unwrap();
        for i in 0..40 {
            store.insert_asset("assets", &asset(i), &[]).await.unwrap();
        }
        let trashed: Vec<String> = (0..12).map(|i| format!("s{i}")).collect();
        store.trash_assets("assets", &trashed, "admin", &[]).await.unwrap();
        assert_eq!(unswept(&db).0, 12, "listed, not swept yet");
        let body = |term: serde_json::Value| {
            let b = json!({"hitsperpage": "100", "query": {"terms": [term]}});
            query::parse_search(b.as_object().unwrap(), "asset", &field_info).unwrap()
        };
        let total = |req| {
            let store = &store;
            async move { store.search_assets("assets", &req, Scope::Live).await.unwrap().total }
        };
        // One whole word (a maintained word count when swept), a prefix, a phrase.
        let word = json!({"field": "description", "operation": "freeform", "value": "harbor"});
        assert_eq!(total(body(word.clone())).await, 28);
        let prefix = json!({"field": "description", "operation": "startswith", "value": "boa"});
        assert_eq!(total(body(prefix)).await, 28);
        let boat0 = json!({"field": "description", "operation": "freeform", "value": "boat0"});
        // boat0: i % 3 == 0 for i in 12..40 -> 12, 15, ..., 39.
        assert_eq!(total(body(boat0)).await, 10);
        // Whole-catalog facets and a filtered search's facets.
        let all = body(json!({"field": "id", "operation": "matches", "value": "*"}));
        let facets = store
            .facet_counts("assets", &all, &["assettype", "keywords"], 20)
            .await
            .unwrap();
        let count = |f: &[(String, Vec<(String, u64)>)], field: &str, v: &str| {
            f.iter()
                .find(|(n, _)| n == field)
                .and_then(|(_, vs)| vs.iter().find(|(x, _)| x == v).map(|(_, n)| *n))
                .unwrap_or(0)
        };
        assert_eq!(count(&facets, "assettype", "photo"), 14);
        assert_eq!(count(&facets, "keywords", "all"), 28);
        assert_eq!(count(&facets, "keywords", "k0"), 5);
        let filtered = store
            .facet_counts("assets", &body(word), &["keywords"], 20)
            .await
            .unwrap();
        assert_eq!(count(&filtered, "keywords", "k1"), 5);
        // A restore and a purge before the sweep.
        store.restore_assets("assets", &["s0".to_string()]).await.unwrap();
        store.purge_asset("assets", "s1").await.unwrap();
        store.purge_asset("assets", "s20").await.unwrap();
        let facets = store.facet_counts("assets", &all, &["keywords"], 20).await.unwrap();
        assert_eq!(count(&facets, "keywords", "all"), 28, "s0 back, s20 gone");
        assert_eq!(count(&facets, "keywords", "k0"), 5, "s0 back, s20 gone");
        // Swept: the kept counts are those of a store that only held the survivors.
        store
            .commits
            .finish_idle_work(crate::store::sqlite_writer::Owed::Trash)
            .await
            .unwrap();
        assert_eq!(unswept(&db), (0, 0));
        let facets = store.facet_counts("assets", &all, &["keywords"], 20).await.unwrap();
        assert_eq!(count(&facets, "keywords", "k0"), 5);
        let fresh_db = dir.path().join("fresh.db");
        let fresh = SqliteStore::open(&fresh_db).await.unwrap();
        fresh.migrate().await.unwrap();
        for i in (0..40).filter(|i| *i == 0 || (*i >= 12 && *i != 20)) {
            fresh.insert_asset("assets", &asset(i), &[]).await.unwrap();
        }
        for i in (1..12).filter(|i| *i != 1) {
            let mut a = asset(i);
            a.id = format!("t{i}");
            a.sourcepath = format!("t/{i}.jpg");
            fresh.insert_asset("assets", &a, &[]).await.unwrap();
            fresh
                .trash_assets("assets", &[a.id.clone()], "admin", &[])
                .await
                .unwrap();
        }
        fresh
            .commits
            .finish_idle_work(crate::store::sqlite_writer::Owed::Trash)
            .await
            .unwrap();
        assert_eq!(kept_counts(&db), kept_counts(&fresh_db));
    }
}
