//! etcd v3 through `etcd-client`. Keys and revisions map 1:1: a create is a transaction
//! guarded by `create_revision == 0`, an update or conditional delete one guarded by
//! `mod_revision == expected`, the way the Kubernetes etcd3 storage does it.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, DeleteOptions, EventType, GetOptions, PutOptions,
    Txn, TxnOp, TxnOpResponse, TxnResponse, WatchOptions,
};

use crate::{
    Error, Event, EventKind, KeyValue, ListRequest, ListResult, Result, Revision, Store,
    WatchStream,
};

/// How long an error path waits for etcd to say which revision it compacted to.
const COMPACTED_HINT_TIMEOUT: Duration = Duration::from_secs(2);

/// Why an etcd operation failed; reaches callers as [`Error::Backend`].
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    #[error("connecting to etcd")]
    Connect(#[source] etcd_client::Error),
    #[error("reading from etcd")]
    Range(#[source] etcd_client::Error),
    #[error("writing to etcd")]
    Txn(#[source] etcd_client::Error),
    #[error("compacting etcd")]
    Compact(#[source] etcd_client::Error),
    #[error("watching etcd")]
    Watch(#[source] etcd_client::Error),
    #[error("etcd canceled the watch: {reason}")]
    WatchCanceled { reason: String },
    #[error("etcd closed the watch stream")]
    WatchClosed,
    #[error("etcd sent a response without the expected {0}")]
    MalformedResponse(&'static str),
    #[error("etcd key is not UTF-8")]
    InvalidKey(#[source] std::string::FromUtf8Error),
}

impl From<EtcdError> for Error {
    fn from(e: EtcdError) -> Self {
        Error::Backend(Box::new(e))
    }
}

/// The etcd backend: a handle to a client connection (cheap to share).
///
/// Unlike the other backends, a watch stream owns its own gRPC stream and outlives the
/// store; it ends (after an error item) when etcd cancels or closes it.
pub struct EtcdStore {
    client: Client,
}

impl EtcdStore {
    /// Connects and makes one read, so an unreachable etcd fails here.
    pub async fn connect(endpoints: &[String]) -> Result<Self> {
        let options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            // Detects a dead connection under a watch that has nothing to deliver.
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
        let client = Client::connect(endpoints, Some(options))
            .await
            .map_err(EtcdError::Connect)?;
        let store = Self { client };
        store
            .client
            .kv_client()
            .get("/", Some(GetOptions::new().with_count_only()))
            .await
            .map_err(EtcdError::Connect)?;
        Ok(store)
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResponse> {
        Ok(self
            .client
            .kv_client()
            .txn(txn)
            .await
            .map_err(EtcdError::Txn)?)
    }

    /// Maps etcd's "compacted" and "future revision" errors to ours; `requested` is the
    /// revision the caller asked for.
    async fn revision_error(
        &self,
        e: etcd_client::Error,
        requested: Revision,
        wrap: fn(etcd_client::Error) -> EtcdError,
    ) -> Error {
        match classify(&e) {
            Some(RevisionError::Compacted) => Error::Compacted {
                requested,
                compacted: self.compacted_hint(requested).await,
            },
            Some(RevisionError::Future) => Error::FutureRevision {
                requested,
                current: self.current_revision().await.unwrap_or(0),
            },
            None => wrap(e).into(),
        }
    }

    /// The compaction point, which etcd reports only on a watch: one started at a compacted
    /// revision is canceled with it. Only called once `revision` is known to be compacted;
    /// 0 when etcd does not answer in time.
    async fn compacted_hint(&self, revision: Revision) -> Revision {
        let probe = async {
            let options = WatchOptions::new().with_start_revision(revision.max(1));
            let mut stream = self
                .client
                .watch_client()
                .watch("\0", Some(options))
                .await
                .ok()?;
            while let Some(resp) = stream.message().await.ok()? {
                if resp.compact_revision() != 0 {
                    return Some(resp.compact_revision());
                }
            }
            None
        };
        tokio::time::timeout(COMPACTED_HINT_TIMEOUT, probe)
            .await
            .ok()
            .flatten()
            .unwrap_or(0)
    }
}

enum RevisionError {
    Compacted,
    Future,
}

/// etcd reports both as gRPC `OutOfRange` with fixed messages (`rpctypes.ErrGRPCCompacted`,
/// `ErrGRPCFutureRev`); the message is the only thing that tells them apart.
fn classify(e: &etcd_client::Error) -> Option<RevisionError> {
    let etcd_client::Error::GRpcStatus(status) = e else {
        return None;
    };
    let message = status.message();
    if message.contains("required revision has been compacted") {
        Some(RevisionError::Compacted)
    } else if message.contains("required revision is a future revision") {
        Some(RevisionError::Future)
    } else {
        None
    }
}

/// etcd's form of "keys from `start` on, under `prefix`". etcd rejects an empty key and
/// spells "every key" as key `\0` with range end `\0`.
fn key_range(prefix: &str, start: &str) -> (Vec<u8>, Vec<u8>) {
    let end = if prefix.is_empty() {
        vec![0]
    } else {
        crate::prefix_end(prefix)
    };
    let start = if start.is_empty() {
        vec![0]
    } else {
        start.as_bytes().to_vec()
    };
    (start, end)
}

fn convert(kv: &etcd_client::KeyValue) -> Result<KeyValue> {
    Ok(KeyValue {
        key: String::from_utf8(kv.key().to_vec()).map_err(EtcdError::InvalidKey)?,
        value: Bytes::copy_from_slice(kv.value()),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
    })
}

fn header_revision(resp: &TxnResponse) -> Result<Revision> {
    Ok(resp
        .header()
        .ok_or(EtcdError::MalformedResponse("header"))?
        .revision())
}

/// The key's value from the `or_else` get of a failed transaction.
fn current_from_failure(resp: &TxnResponse) -> Result<Option<KeyValue>> {
    for op in resp.op_responses() {
        if let TxnOpResponse::Get(get) = op {
            return get.kvs().first().map(convert).transpose();
        }
    }
    Err(EtcdError::MalformedResponse("get response").into())
}

/// Compares that hold when the key exists and, if given, is at `expected`.
fn exists_at(key: &str, expected: Option<Revision>) -> Vec<Compare> {
    let mut compares = vec![Compare::create_revision(key, CompareOp::Greater, 0)];
    if let Some(expected) = expected {
        compares.push(Compare::mod_revision(key, CompareOp::Equal, expected));
    }
    compares
}

fn convert_event(event: &etcd_client::Event) -> Result<Event> {
    let kv = event.kv().ok_or(EtcdError::MalformedResponse("event kv"))?;
    let prev = event.prev_kv().map(convert).transpose()?;
    Ok(match event.event_type() {
        EventType::Put => Event {
            kind: EventKind::Put,
            kv: convert(kv)?,
            prev,
        },
        // etcd's delete event has only the key and the deletion revision; ours carries the
        // last value, which is the prev_kv the watch asked for (absent if compacted).
        EventType::Delete => {
            let mut last = match &prev {
                Some(prev) => prev.clone(),
                None => KeyValue {
                    value: Bytes::new(),
                    create_revision: 0,
                    ..convert(kv)?
                },
            };
            last.mod_revision = kv.mod_revision();
            Event {
                kind: EventKind::Delete,
                kv: last,
                prev,
            }
        }
    })
}

#[async_trait::async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let resp = self
            .client
            .kv_client()
            .get(key, None)
            .await
            .map_err(EtcdError::Range)?;
        resp.kvs().first().map(convert).transpose()
    }

    async fn list(&self, req: ListRequest<'_>) -> Result<ListResult> {
        let (start, end) = key_range(req.prefix, crate::range_start(req.prefix, req.start));
        let mut options = GetOptions::new()
            .with_range(end)
            .with_revision(req.revision);
        if req.limit != 0 {
            options = options.with_limit(i64::try_from(req.limit).unwrap_or(i64::MAX));
        }
        let resp = match self.client.kv_client().get(start, Some(options)).await {
            Ok(resp) => resp,
            Err(e) => return Err(self.revision_error(e, req.revision, EtcdError::Range).await),
        };
        let revision = match req.revision {
            0 => resp
                .header()
                .ok_or(EtcdError::MalformedResponse("header"))?
                .revision(),
            r => r,
        };
        Ok(ListResult {
            kvs: resp.kvs().iter().map(convert).collect::<Result<_>>()?,
            revision,
            more: resp.more(),
        })
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue> {
        let txn = Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, value.to_vec(), None)]);
        let resp = self.txn(txn).await?;
        if !resp.succeeded() {
            return Err(Error::AlreadyExists { key: key.into() });
        }
        let revision = header_revision(&resp)?;
        Ok(KeyValue {
            key: key.to_owned(),
            value,
            create_revision: revision,
            mod_revision: revision,
        })
    }

    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<KeyValue> {
        let txn = Txn::new()
            .when(exists_at(key, Some(expected)))
            .and_then([TxnOp::put(
                key,
                value.to_vec(),
                Some(PutOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(key, None)]);
        let resp = self.txn(txn).await?;
        if !resp.succeeded() {
            return Err(match current_from_failure(&resp)? {
                None => Error::NotFound { key: key.into() },
                current => Error::Conflict {
                    key: key.into(),
                    expected,
                    current,
                },
            });
        }
        let revision = header_revision(&resp)?;
        let create_revision = resp
            .op_responses()
            .into_iter()
            .find_map(|op| match op {
                TxnOpResponse::Put(put) => put.prev_key().map(|kv| kv.create_revision()),
                _ => None,
            })
            .ok_or(EtcdError::MalformedResponse("previous value"))?;
        Ok(KeyValue {
            key: key.to_owned(),
            value,
            create_revision,
            mod_revision: revision,
        })
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue> {
        let txn = Txn::new()
            .when(exists_at(key, expected))
            .and_then([TxnOp::delete(
                key,
                Some(DeleteOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(key, None)]);
        let resp = self.txn(txn).await?;
        if !resp.succeeded() {
            return Err(match (current_from_failure(&resp)?, expected) {
                (None, _) | (Some(_), None) => Error::NotFound { key: key.into() },
                (current, Some(expected)) => Error::Conflict {
                    key: key.into(),
                    expected,
                    current,
                },
            });
        }
        let revision = header_revision(&resp)?;
        let mut last = resp
            .op_responses()
            .into_iter()
            .find_map(|op| match op {
                TxnOpResponse::Delete(del) => del.prev_kvs().first().map(convert),
                _ => None,
            })
            .ok_or(EtcdError::MalformedResponse("deleted value"))??;
        last.mod_revision = revision;
        Ok(last)
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        // etcd reports a compacted start revision only asynchronously, as a canceled watch;
        // a read at that revision fails synchronously, so check that way first.
        let (key, end) = key_range(prefix, prefix);
        let check = GetOptions::new()
            .with_range(end.clone())
            .with_revision(after + 1)
            .with_count_only();
        if let Err(e) = self.client.kv_client().get(key.clone(), Some(check)).await
            && let Some(RevisionError::Compacted) = classify(&e)
        {
            return Err(self.revision_error(e, after, EtcdError::Watch).await);
        }
        let options = WatchOptions::new()
            .with_range(end)
            .with_start_revision(after + 1)
            .with_prev_key();
        let stream = self
            .client
            .watch_client()
            .watch(key, Some(options))
            .await
            .map_err(EtcdError::Watch)?;
        let state = WatchState {
            stream,
            pending: VecDeque::new(),
            after,
            done: false,
        };
        Ok(Box::pin(futures::stream::unfold(
            state,
            |mut state| async { state.next().await.map(|item| (item, state)) },
        )))
    }

    async fn current_revision(&self) -> Result<Revision> {
        let resp = self
            .client
            .kv_client()
            .get("/", Some(GetOptions::new().with_count_only()))
            .await
            .map_err(EtcdError::Range)?;
        Ok(resp
            .header()
            .ok_or(EtcdError::MalformedResponse("header"))?
            .revision())
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        // Physical: return once etcd has applied it, like the SQLite backend does.
        let options = etcd_client::CompactionOptions::new().with_physical();
        match self
            .client
            .kv_client()
            .compact(revision, Some(options))
            .await
        {
            Ok(_) => Ok(()),
            // Compacting to a revision at or below the compaction point is a no-op for us.
            Err(e) if matches!(classify(&e), Some(RevisionError::Compacted)) => Ok(()),
            Err(e) => Err(self.revision_error(e, revision, EtcdError::Compact).await),
        }
    }
}

struct WatchState {
    /// Also owns the request half, which must stay open for the watch to live.
    stream: etcd_client::WatchStream,
    pending: VecDeque<Event>,
    after: Revision,
    done: bool,
}

impl WatchState {
    async fn next(&mut self) -> Option<Result<Event>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(Ok(event));
            }
            if self.done {
                return None;
            }
            let resp = match self.stream.message().await {
                Ok(Some(resp)) => resp,
                Ok(None) => return self.fail(EtcdError::WatchClosed.into()),
                Err(e) => return self.fail(EtcdError::Watch(e).into()),
            };
            if resp.canceled() {
                let error = match resp.compact_revision() {
                    0 => EtcdError::WatchCanceled {
                        reason: resp.cancel_reason().to_owned(),
                    }
                    .into(),
                    compacted => Error::Compacted {
                        requested: self.after,
                        compacted,
                    },
                };
                return self.fail(error);
            }
            for event in resp.events() {
                match convert_event(event) {
                    Ok(event) => {
                        self.after = event.kv.mod_revision;
                        self.pending.push_back(event);
                    }
                    Err(e) => return self.fail(e),
                }
            }
        }
    }

    fn fail(&mut self, error: Error) -> Option<Result<Event>> {
        self.done = true;
        self.pending.clear();
        Some(Err(error))
    }
}

#[cfg(test)]
mod tests;
