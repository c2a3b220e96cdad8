//! The Spin 2 interfaces the edge component imports: `fermyon:spin/variables` and
//! `fermyon:spin/redis`, implemented over the embedder's variables and [`EdgeStore`]s.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

use crate::store::{EdgeStore, InProcessStore, RedisStore, RedisTimeouts, StoreArg, StoreValue};

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "heart:edge-host/spin-imports",
        imports: { default: async | trappable },
        with: {
            "fermyon:spin/redis.connection": super::RedisConnection,
        },
    });
}

use bindings::fermyon::spin::redis::{self, Error as RedisError, RedisParameter, RedisResult};
use bindings::fermyon::spin::variables::{self, Error as VariableError};

/// The address scheme that selects the in-process store instead of Redis (`redis_url = "memory:"`).
pub const IN_PROCESS_ADDRESS: &str = "memory:";

/// The stores every request shares: the Redis store of the allowed address and the in-process
/// store.
#[derive(Debug)]
pub struct Stores {
    /// The only address the component may open (the `redis_url` variable), like Spin's
    /// `allowed_outbound_hosts`.
    allowed_address: Option<String>,
    in_process: Arc<dyn EdgeStore>,
    /// The Redis store of each address opened so far (only the allowed one, in practice).
    redis: Mutex<HashMap<String, Arc<RedisStore>>>,
    timeouts: RedisTimeouts,
}

impl Stores {
    /// Stores allowing only `allowed_address`; `memory:` opens `in_process`, a `redis://` address
    /// a [`RedisStore`] waiting as `timeouts` say.
    pub fn new(
        allowed_address: Option<String>,
        in_process: Option<Arc<dyn EdgeStore>>,
        timeouts: RedisTimeouts,
    ) -> Stores {
        Stores {
            allowed_address,
            in_process: in_process.unwrap_or_else(|| Arc::new(InProcessStore::default())),
            redis: Mutex::new(HashMap::new()),
            timeouts,
        }
    }

    /// Stores for another thread: the same allowed address, in-process store and timeouts, and
    /// Redis connections of its own (a Redis connection is driven by a task of the runtime that
    /// opened it).
    pub fn sibling(&self) -> Stores {
        Stores::new(
            self.allowed_address.clone(),
            Some(self.in_process.clone()),
            self.timeouts,
        )
    }

    /// The store behind `address`. While Redis is down (its breaker open) opening fails at once,
    /// so the component goes on without the cache without even trying.
    async fn open(&self, address: &str) -> Result<Arc<dyn EdgeStore>, RedisError> {
        if self.allowed_address.as_deref() != Some(address) {
            tracing::warn!(
                address,
                "component opened a Redis address it is not allowed"
            );
            return Err(RedisError::InvalidAddress);
        }
        if address.starts_with(IN_PROCESS_ADDRESS) {
            return Ok(self.in_process.clone());
        }
        let store = {
            let mut stores = self
                .redis
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match stores.get(address) {
                Some(store) => store.clone(),
                None => {
                    let store = RedisStore::new(address, self.timeouts).map_err(|e| {
                        tracing::warn!(error = %e, "the Redis address is not valid");
                        RedisError::InvalidAddress
                    })?;
                    let store = Arc::new(store);
                    stores.insert(address.to_owned(), store.clone());
                    store
                }
            }
        };
        if !store.is_up() {
            return Err(RedisError::Other("Redis is unreachable".into()));
        }
        Ok(store)
    }
}

/// The host side of a component's Redis connection.
#[derive(Debug)]
pub struct RedisConnection {
    store: Arc<dyn EdgeStore>,
}

/// What the Spin interfaces need from a request's store data.
pub struct SpinState<'a> {
    /// The component's resources.
    pub table: &'a mut ResourceTable,
    /// Application variables.
    pub variables: &'a HashMap<String, String>,
    /// The shared stores.
    pub stores: &'a Stores,
}

impl std::fmt::Debug for SpinState<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpinState").finish_non_exhaustive()
    }
}

struct Spin;

impl HasData for Spin {
    type Data<'a> = SpinState<'a>;
}

/// Adds `fermyon:spin/redis@2.0.0` and `fermyon:spin/variables@2.0.0` to `linker`.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> SpinState<'_>,
) -> wasmtime::Result<()> {
    redis::add_to_linker::<T, Spin>(linker, get)?;
    variables::add_to_linker::<T, Spin>(linker, get)?;
    Ok(())
}

impl variables::Host for SpinState<'_> {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, VariableError>> {
        Ok(self
            .variables
            .get(&name)
            .cloned()
            .ok_or(VariableError::Undefined(name)))
    }
}

fn to_args(arguments: Vec<RedisParameter>) -> Vec<StoreArg> {
    arguments
        .into_iter()
        .map(|a| match a {
            RedisParameter::Int64(n) => StoreArg::Int(n),
            RedisParameter::Binary(b) => StoreArg::Bytes(b),
        })
        .collect()
}

fn store_error(e: crate::store::StoreError) -> RedisError {
    RedisError::Other(e.0)
}

impl SpinState<'_> {
    fn store(
        &self,
        connection: &Resource<RedisConnection>,
    ) -> wasmtime::Result<Arc<dyn EdgeStore>> {
        Ok(self.table.get(connection)?.store.clone())
    }

    /// Runs `command` on the connection's store (the store is looked up before awaiting, so the
    /// future does not hold the resource table).
    fn run(
        &self,
        connection: &Resource<RedisConnection>,
        command: &str,
        args: Vec<StoreArg>,
    ) -> wasmtime::Result<
        impl std::future::Future<Output = Result<Vec<StoreValue>, RedisError>> + Send + 'static,
    > {
        let store = self.store(connection)?;
        let command = command.to_owned();
        Ok(async move { store.execute(&command, &args).await.map_err(store_error) })
    }
}

fn bytes(s: String) -> StoreArg {
    StoreArg::Bytes(s.into_bytes())
}

fn first(values: Vec<StoreValue>) -> StoreValue {
    values.into_iter().next().unwrap_or(StoreValue::Nil)
}

fn int_of(value: StoreValue) -> Result<i64, RedisError> {
    match value {
        StoreValue::Int(n) => Ok(n),
        _ => Err(RedisError::TypeError),
    }
}

impl redis::Host for SpinState<'_> {}

impl redis::HostConnection for SpinState<'_> {
    async fn open(
        &mut self,
        address: String,
    ) -> wasmtime::Result<Result<Resource<RedisConnection>, RedisError>> {
        match self.stores.open(&address).await {
            Ok(store) => Ok(Ok(self.table.push(RedisConnection { store })?)),
            Err(e) => Ok(Err(e)),
        }
    }

    async fn publish(
        &mut self,
        _connection: Resource<RedisConnection>,
        _channel: String,
        _payload: Vec<u8>,
    ) -> wasmtime::Result<Result<(), RedisError>> {
        Ok(Err(RedisError::Other(
            "publish is not supported by this host".into(),
        )))
    }

    async fn get(
        &mut self,
        connection: Resource<RedisConnection>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, RedisError>> {
        let store = self.store(&connection)?;
        Ok(store.get(&key).await.map_err(store_error))
    }

    async fn set(
        &mut self,
        connection: Resource<RedisConnection>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), RedisError>> {
        let store = self.store(&connection)?;
        Ok(store.set(&key, &value, None).await.map_err(store_error))
    }

    async fn incr(
        &mut self,
        connection: Resource<RedisConnection>,
        key: String,
    ) -> wasmtime::Result<Result<i64, RedisError>> {
        let store = self.store(&connection)?;
        Ok(store.incr(&key).await.map_err(store_error))
    }

    async fn del(
        &mut self,
        connection: Resource<RedisConnection>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<u32, RedisError>> {
        let store = self.store(&connection)?;
        Ok(store.del(&keys).await.map_err(store_error))
    }

    async fn sadd(
        &mut self,
        connection: Resource<RedisConnection>,
        key: String,
        values: Vec<String>,
    ) -> wasmtime::Result<Result<u32, RedisError>> {
        let args = std::iter::once(key).chain(values).map(bytes).collect();
        Ok(self
            .run(&connection, "SADD", args)?
            .await
            .and_then(|v| int_of(first(v)))
            .map(|n| u32::try_from(n).unwrap_or(0)))
    }

    async fn smembers(
        &mut self,
        connection: Resource<RedisConnection>,
        key: String,
    ) -> wasmtime::Result<Result<Vec<String>, RedisError>> {
        Ok(self
            .run(&connection, "SMEMBERS", vec![bytes(key)])?
            .await
            .map(|values| {
                values
                    .into_iter()
                    .filter_map(|v| match v {
                        StoreValue::Bytes(b) => String::from_utf8(b).ok(),
                        StoreValue::Status(s) => Some(s),
                        _ => None,
                    })
                    .collect()
            }))
    }

    async fn srem(
        &mut self,
        connection: Resource<RedisConnection>,
        key: String,
        values: Vec<String>,
    ) -> wasmtime::Result<Result<u32, RedisError>> {
        let args = std::iter::once(key).chain(values).map(bytes).collect();
        Ok(self
            .run(&connection, "SREM", args)?
            .await
            .and_then(|v| int_of(first(v)))
            .map(|n| u32::try_from(n).unwrap_or(0)))
    }

    async fn execute(
        &mut self,
        connection: Resource<RedisConnection>,
        command: String,
        arguments: Vec<RedisParameter>,
    ) -> wasmtime::Result<Result<Vec<RedisResult>, RedisError>> {
        Ok(self
            .run(&connection, &command, to_args(arguments))?
            .await
            .map(|values| {
                values
                    .into_iter()
                    .map(|v| match v {
                        StoreValue::Nil => RedisResult::Nil,
                        StoreValue::Status(s) => RedisResult::Status(s),
                        StoreValue::Int(n) => RedisResult::Int64(n),
                        StoreValue::Bytes(b) => RedisResult::Binary(b),
                    })
                    .collect()
            }))
    }

    async fn drop(&mut self, connection: Resource<RedisConnection>) -> wasmtime::Result<()> {
        self.table.delete(connection)?;
        Ok(())
    }
}
