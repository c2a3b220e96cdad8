//! What backs the component's `fermyon:spin/redis` connections: real Redis, or a store in this
//! process behind the small [`EdgeStore`] trait (so the core's in-process cache can be plugged in
//! when edge and core run as one program).
//!
//! - [`memory`]: [`InProcessStore`], a bounded map with expiry.
//! - [`redis`]: [`RedisStore`], real Redis behind a [`breaker::Breaker`]: while Redis is down or
//!   hanging, calls fail at once (the component then forwards without the cache) and a background
//!   probe finds when it is back.

use std::time::Duration;

use async_trait::async_trait;
use heart_shared::edge::{GATE_SCRIPT, GATE_SCRIPT_SHA1, VERIFIED_SCRIPT, VERIFIED_SCRIPT_SHA1};

pub mod breaker;
pub mod memory;
pub mod redis;

pub use self::memory::InProcessStore;
pub use self::redis::{RedisStore, RedisTimeouts};

/// A store operation failed (unreachable, wrong type, unknown command).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoreError {}

/// An argument of [`EdgeStore::execute`] (Spin's `redis-parameter`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreArg {
    /// An integer.
    Int(i64),
    /// Bytes (strings are UTF-8 bytes).
    Bytes(Vec<u8>),
}

impl StoreArg {
    fn as_bytes(&self) -> Vec<u8> {
        match self {
            StoreArg::Int(n) => n.to_string().into_bytes(),
            StoreArg::Bytes(b) => b.clone(),
        }
    }

    fn as_string(&self) -> String {
        String::from_utf8_lossy(&self.as_bytes()).into_owned()
    }

    fn as_int(&self) -> Result<i64, StoreError> {
        match self {
            StoreArg::Int(n) => Ok(*n),
            StoreArg::Bytes(b) => std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| StoreError("ERR value is not an integer".into())),
        }
    }
}

/// A value answered by [`EdgeStore::execute`] (Spin's `redis-result`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreValue {
    /// No value.
    Nil,
    /// A status such as `OK`.
    Status(String),
    /// An integer.
    Int(i64),
    /// Bytes.
    Bytes(Vec<u8>),
}

/// The operations the edge component performs on its cache. Everything the component does goes
/// through [`EdgeStore::execute`]; its default implementation understands the few commands the
/// edge sends (`GET`, `SET [EX]`, `INCR`, `EXPIRE`, `EXISTS`, `DEL` and `EVAL`/`EVALSHA` of
/// [`GATE_SCRIPT`]) in terms of the other operations, so an in-process store only implements those.
#[async_trait]
pub trait EdgeStore: Send + Sync + std::fmt::Debug + 'static {
    /// The value at `key`.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Sets `key` to `value`, expiring after `ttl` if given.
    async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), StoreError>;
    /// Increments the integer at `key` (missing: 0) and answers the new value; keeps the expiry.
    async fn incr(&self, key: &str) -> Result<i64, StoreError>;
    /// Gives `key` a lifetime of `ttl`; whether the key exists.
    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool, StoreError>;
    /// Whether `key` exists.
    async fn exists(&self, key: &str) -> Result<bool, StoreError>;
    /// Deletes `keys`; how many existed.
    async fn del(&self, keys: &[String]) -> Result<u32, StoreError>;

    /// Runs `command` with `args` (Spin's `execute`).
    async fn execute(
        &self,
        command: &str,
        args: &[StoreArg],
    ) -> Result<Vec<StoreValue>, StoreError> {
        execute_with_operations(self, command, args).await
    }
}

fn ttl_of(arg: &StoreArg) -> Result<Duration, StoreError> {
    let secs = arg.as_int()?;
    u64::try_from(secs)
        .ok()
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
        .ok_or_else(|| StoreError("ERR invalid expire time".into()))
}

fn arity(args: &[StoreArg], n: usize, command: &str) -> Result<(), StoreError> {
    if args.len() < n {
        return Err(StoreError(format!(
            "ERR wrong number of arguments for '{command}'"
        )));
    }
    Ok(())
}

/// [`EdgeStore::execute`] for stores that only implement the basic operations.
pub async fn execute_with_operations<S: EdgeStore + ?Sized>(
    store: &S,
    command: &str,
    args: &[StoreArg],
) -> Result<Vec<StoreValue>, StoreError> {
    let command = command.to_ascii_uppercase();
    let one = |v: StoreValue| Ok(vec![v]);
    match command.as_str() {
        "GET" => {
            arity(args, 1, &command)?;
            one(store
                .get(&args[0].as_string())
                .await?
                .map_or(StoreValue::Nil, StoreValue::Bytes))
        }
        "SET" => {
            arity(args, 2, &command)?;
            let ttl = match args.get(2).map(|a| a.as_string().to_ascii_uppercase()) {
                None => None,
                Some(option) if option == "EX" && args.len() == 4 => Some(ttl_of(&args[3])?),
                Some(option) => {
                    return Err(StoreError(format!("ERR unsupported SET option {option}")))
                }
            };
            store
                .set(&args[0].as_string(), &args[1].as_bytes(), ttl)
                .await?;
            one(StoreValue::Status("OK".into()))
        }
        "INCR" => {
            arity(args, 1, &command)?;
            one(StoreValue::Int(store.incr(&args[0].as_string()).await?))
        }
        "EXPIRE" => {
            arity(args, 2, &command)?;
            let set = store
                .expire(&args[0].as_string(), ttl_of(&args[1])?)
                .await?;
            one(StoreValue::Int(i64::from(set)))
        }
        "EXISTS" => {
            let mut n = 0;
            for key in args {
                n += i64::from(store.exists(&key.as_string()).await?);
            }
            one(StoreValue::Int(n))
        }
        "DEL" => {
            let keys: Vec<String> = args.iter().map(StoreArg::as_string).collect();
            one(StoreValue::Int(i64::from(store.del(&keys).await?)))
        }
        "EVAL" | "EVALSHA" => {
            arity(args, 2, &command)?;
            let script = args[0].as_string();
            let is = |text: &str, sha: &str| {
                if command == "EVAL" {
                    script == text
                } else {
                    script.eq_ignore_ascii_case(sha)
                }
            };
            let gate = is(GATE_SCRIPT, GATE_SCRIPT_SHA1);
            if !gate && !is(VERIFIED_SCRIPT, VERIFIED_SCRIPT_SHA1) {
                return Err(StoreError(
                    "NOSCRIPT only the edge's scripts run on this store".into(),
                ));
            }
            let numkeys = usize::try_from(args[1].as_int()?)
                .map_err(|_| StoreError("ERR negative number of keys".into()))?;
            arity(args, 2 + numkeys, &command)?;
            let keys: Vec<String> = args[2..2 + numkeys]
                .iter()
                .map(StoreArg::as_string)
                .collect();
            let argv = &args[2 + numkeys..];
            if gate {
                run_gate(store, &keys, argv).await
            } else {
                run_verified(store, &keys, argv).await
            }
        }
        other => Err(StoreError(format!(
            "ERR command {other} is not supported by this store"
        ))),
    }
}

/// [`GATE_SCRIPT`] in Rust over the basic operations, stopping where the script stops (not
/// atomic; counts may be off by a concurrent request, which a rate limit tolerates).
async fn run_gate<S: EdgeStore + ?Sized>(
    store: &S,
    keys: &[String],
    argv: &[StoreArg],
) -> Result<Vec<StoreValue>, StoreError> {
    let arg = |i: usize| {
        argv.get(i)
            .ok_or_else(|| StoreError("ERR missing script argument".into()))
    };
    let mut out = vec![
        StoreValue::Int(0),
        StoreValue::Int(0),
        StoreValue::Int(0),
        StoreValue::Int(0),
        StoreValue::Nil,
        StoreValue::Int(0),
    ];
    let first = keys
        .first()
        .ok_or_else(|| StoreError("ERR the gate needs a key".into()))?;
    let ip_count = store.incr(first).await?;
    if ip_count == 1 {
        store.expire(first, ttl_of(arg(0)?)?).await?;
    }
    out[0] = StoreValue::Int(ip_count);
    let ip_limit = arg(4).and_then(StoreArg::as_int).unwrap_or(i64::MAX);
    let member_limit = arg(5).and_then(StoreArg::as_int).unwrap_or(i64::MAX);
    if keys.len() >= 4 {
        let revoked = store.exists(&keys[1]).await?;
        out[1] = StoreValue::Int(i64::from(revoked));
        if revoked || ip_count > ip_limit {
            return Ok(out);
        }
        let marked = store.exists(&keys[3]).await?;
        out[5] = StoreValue::Int(i64::from(marked));
        if marked {
            let member_count = store.incr(&keys[2]).await?;
            if member_count == 1 {
                store.expire(&keys[2], ttl_of(arg(1)?)?).await?;
            }
            out[2] = StoreValue::Int(member_count);
            if member_count > member_limit {
                return Ok(out);
            }
        }
    } else if ip_count > ip_limit {
        return Ok(out);
    }
    if keys.len() >= 5 {
        let version = store
            .get(&keys[4])
            .await?
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
            .unwrap_or(0);
        out[3] = StoreValue::Int(version);
        let key = format!("{}{version}{}", arg(2)?.as_string(), arg(3)?.as_string());
        if let Some(page) = store.get(&key).await? {
            out[4] = StoreValue::Bytes(page);
        }
    }
    Ok(out)
}

/// [`VERIFIED_SCRIPT`] over the basic operations.
async fn run_verified<S: EdgeStore + ?Sized>(
    store: &S,
    keys: &[String],
    argv: &[StoreArg],
) -> Result<Vec<StoreValue>, StoreError> {
    let (Some(mark), Some(counter), Some(ttl), Some(window)) =
        (keys.first(), keys.get(1), argv.first(), argv.get(1))
    else {
        return Err(StoreError(
            "ERR the verified-token script needs 2 keys and 2 arguments".into(),
        ));
    };
    store.set(mark, b"1", Some(ttl_of(ttl)?)).await?;
    let count = store.incr(counter).await?;
    if count == 1 {
        store.expire(counter, ttl_of(window)?).await?;
    }
    Ok(vec![StoreValue::Int(count)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::InProcessStore;

    fn bytes(s: &str) -> StoreArg {
        StoreArg::Bytes(s.as_bytes().to_vec())
    }

    #[tokio::test]
    async fn in_process_store_runs_the_edge_commands() {
        let store = InProcessStore::default();
        assert_eq!(
            store.execute("INCR", &[bytes("c")]).await.unwrap(),
            vec![StoreValue::Int(1)]
        );
        store
            .execute(
                "SET",
                &[bytes("k"), bytes("v"), bytes("EX"), StoreArg::Int(60)],
            )
            .await
            .unwrap();
        assert_eq!(
            store.execute("GET", &[bytes("k")]).await.unwrap(),
            vec![StoreValue::Bytes(b"v".to_vec())]
        );
        assert_eq!(
            store
                .execute("EXISTS", &[bytes("k"), bytes("nope")])
                .await
                .unwrap(),
            vec![StoreValue::Int(1)]
        );
        assert_eq!(
            store.execute("DEL", &[bytes("k")]).await.unwrap(),
            vec![StoreValue::Int(1)]
        );
        assert!(store.execute("FLUSHALL", &[]).await.is_err());
    }

    #[tokio::test]
    async fn in_process_store_understands_the_gate_script_and_nothing_else() {
        let store = InProcessStore::default();
        store.set("p:revoked:s", b"1", None).await.unwrap();
        store.set("p:tok:t", b"1", None).await.unwrap();
        store.set("p:feed:version", b"3", None).await.unwrap();
        store.set("p:feed:v3:x", b"page", None).await.unwrap();
        let args = gate_args("p:revoked:t", "p:tok:t", 100, 100);
        let out = store.execute("EVALSHA", &args).await.unwrap();
        assert_eq!(
            out,
            vec![
                StoreValue::Int(1),
                StoreValue::Int(0),
                StoreValue::Int(1),
                StoreValue::Int(3),
                StoreValue::Bytes(b"page".to_vec()),
                StoreValue::Int(1),
            ]
        );
        let revoked = gate_args("p:revoked:s", "p:tok:t", 100, 100);
        let out = store.execute("EVALSHA", &revoked).await.unwrap();
        assert_eq!(out[1], StoreValue::Int(1));
        assert_eq!(out[4], StoreValue::Nil);
        let mut other = args.clone();
        other[0] = bytes("0123");
        assert!(store.execute("EVALSHA", &other).await.is_err());
    }

    /// The gate's arguments for a feed read with revocation key `revoked` and mark `mark`.
    fn gate_args(revoked: &str, mark: &str, ip_limit: i64, member_limit: i64) -> Vec<StoreArg> {
        vec![
            bytes(GATE_SCRIPT_SHA1),
            StoreArg::Int(5),
            bytes("ip"),
            bytes(revoked),
            bytes("member"),
            bytes(mark),
            bytes("p:feed:version"),
            StoreArg::Int(60),
            StoreArg::Int(60),
            bytes("p:feed:v"),
            bytes(":x"),
            StoreArg::Int(ip_limit),
            StoreArg::Int(member_limit),
        ]
    }

    #[tokio::test]
    async fn the_gate_stops_at_the_first_refusal() {
        let store = InProcessStore::default();
        store.set("p:tok:t", b"1", None).await.unwrap();
        store.set("p:feed:version", b"1", None).await.unwrap();
        store.set("p:feed:v1:x", b"page", None).await.unwrap();
        let args =
            |ip_limit, member_limit| gate_args("p:revoked:t", "p:tok:t", ip_limit, member_limit);
        // Over the address limit: the member is not counted, no page is read.
        let out = store.execute("EVALSHA", &args(0, 100)).await.unwrap();
        assert_eq!(out[2], StoreValue::Int(0));
        assert_eq!(out[4], StoreValue::Nil);
        assert_eq!(store.get("member").await.unwrap(), None);
        // Over the member limit: no page.
        let out = store.execute("EVALSHA", &args(100, 0)).await.unwrap();
        assert_eq!(out[2], StoreValue::Int(1));
        assert_eq!(out[4], StoreValue::Nil);
        let out = store.execute("EVALSHA", &args(100, 100)).await.unwrap();
        assert_eq!(out[4], StoreValue::Bytes(b"page".to_vec()));
    }

    #[tokio::test]
    async fn an_unmarked_token_does_not_count_against_the_member_until_marked() {
        let store = InProcessStore::default();
        let out = store
            .execute("EVALSHA", &gate_args("p:revoked:t", "p:tok:new", 100, 100))
            .await
            .unwrap();
        assert_eq!(out[5], StoreValue::Int(0), "not marked");
        assert_eq!(out[2], StoreValue::Int(0), "member not counted");
        assert_eq!(store.get("member").await.unwrap(), None);
        let marked = store
            .execute(
                "EVALSHA",
                &[
                    bytes(VERIFIED_SCRIPT_SHA1),
                    StoreArg::Int(2),
                    bytes("p:tok:new"),
                    bytes("member"),
                    StoreArg::Int(300),
                    StoreArg::Int(60),
                ],
            )
            .await
            .unwrap();
        assert_eq!(marked, vec![StoreValue::Int(1)], "the member counted once");
        let out = store
            .execute("EVALSHA", &gate_args("p:revoked:t", "p:tok:new", 100, 100))
            .await
            .unwrap();
        assert_eq!(out[5], StoreValue::Int(1));
        assert_eq!(out[2], StoreValue::Int(2));
    }
}
