//! The Store on a real etcd (v3 API through the `etcd-client` crate).
//!
//! Only RPCs that etcd 3.4 serves are used (KV Range/Txn/Put/DeleteRange/Compact and Watch),
//! because Debian bookworm ships etcd 3.4.23; newer calls such as the streaming range
//! return `Unimplemented` there. Each method maps one-to-one onto etcd so that the
//! revisions the apiserver hands out as `resourceVersion` are etcd's own.

use std::collections::VecDeque;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use etcd_client::{
    Client, CompactionOptions, Compare, CompareOp, ConnectOptions, DeleteOptions, EventType,
    GetOptions, PutOptions, Txn, TxnOp, TxnOpResponse, WatchOptions, WatchResponse,
};
use futures::StreamExt;

use super::{
    KeyValue, ListOptions, ListPage, Revision, Store, StoreError, StoredValue, WatchEvent,
    WatchStream,
};

/// Where and how to reach etcd.
#[derive(Clone, Debug)]
pub struct EtcdConfig {
    /// `host:port` of each member; requests are balanced over them.
    pub endpoints: Vec<String>,
    /// Root of every key (`/registry`), so several clusters can share one etcd.
    pub prefix: String,
    /// Bounds TCP connection setup, so a dead member is noticed quickly.
    pub connect_timeout: Duration,
    /// Bounds each unary request (and the wait for a watch to be created). Watch streams
    /// themselves are unbounded: the timeout applies until response headers only.
    pub request_timeout: Duration,
}

impl EtcdConfig {
    /// Defaults for `endpoints`: prefix `/registry`, 2 s connect, 5 s per request.
    pub fn new(endpoints: &[String]) -> Self {
        Self {
            endpoints: endpoints.to_vec(),
            prefix: DEFAULT_PREFIX.to_owned(),
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
        }
    }
}

/// Kubernetes' own default key prefix.
pub const DEFAULT_PREFIX: &str = "/registry";

/// Store backed by etcd; one per cluster. All requests share one balanced gRPC channel.
pub struct EtcdStore {
    client: Client,
    /// `<prefix>/`: prepended to every relative key.
    root: String,
    /// For error messages: the endpoints joined by `,`.
    endpoint: String,
    request_timeout: Duration,
}

/// Parses `etcd://h1:2379,h2:2379` into `["h1:2379", "h2:2379"]`.
pub fn parse_store_url(url: &str) -> Result<Vec<String>, StoreError> {
    let rest = url.strip_prefix("etcd://").ok_or_else(|| {
        StoreError::Internal(format!(
            "store URL {url:?} must look like etcd://HOST:PORT[,HOST:PORT...]"
        ))
    })?;
    let rest = rest.trim_end_matches('/');
    let mut endpoints = Vec::new();
    for ep in rest.split(',') {
        let ep = ep.trim();
        let valid = ep
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !valid {
            return Err(StoreError::Internal(format!(
                "store URL {url:?}: endpoint {ep:?} is not HOST:PORT"
            )));
        }
        endpoints.push(ep.to_owned());
    }
    Ok(endpoints)
}

impl EtcdStore {
    /// Connects to `endpoints` with keys under `prefix` (`/registry` by default) and checks
    /// that etcd answers, so a wrong address fails here rather than mid-run.
    pub async fn connect(endpoints: &[String], prefix: &str) -> Result<Self, StoreError> {
        let mut config = EtcdConfig::new(endpoints);
        config.prefix = prefix.to_owned();
        Self::connect_with(config).await
    }

    /// Like [`EtcdStore::connect`] with every knob.
    pub async fn connect_with(config: EtcdConfig) -> Result<Self, StoreError> {
        let endpoint = config.endpoints.join(",");
        if config.endpoints.is_empty() {
            return Err(StoreError::Internal("no etcd endpoints given".to_owned()));
        }
        let prefix = config.prefix.trim_end_matches('/');
        let options = ConnectOptions::new()
            .with_connect_timeout(config.connect_timeout)
            .with_timeout(config.request_timeout);
        let client = Client::connect(&config.endpoints, Some(options))
            .await
            .map_err(|e| map_error(&endpoint, e))?;
        let store = Self {
            client,
            root: format!("{prefix}/"),
            endpoint,
            request_timeout: config.request_timeout,
        };
        // The client connects lazily; one cheap read proves etcd is there.
        store.current_revision().await?;
        Ok(store)
    }

    fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.root)
    }

    fn err(&self, e: etcd_client::Error) -> StoreError {
        map_error(&self.endpoint, e)
    }

    fn convert(&self, kv: &etcd_client::KeyValue) -> Result<KeyValue, StoreError> {
        convert_kv(&self.root, kv)
    }

    /// Why a transaction's compare failed, from the `get` of `key` in its else branch.
    fn explain_failed_compare(
        &self,
        key: &str,
        expected: Revision,
        resp: &etcd_client::TxnResponse,
    ) -> StoreError {
        let current = resp.op_responses().into_iter().find_map(|op| match op {
            TxnOpResponse::Get(get) => Some(get.kvs().first().map(|kv| kv.mod_revision())),
            _ => None,
        });
        match current.flatten() {
            None => StoreError::NotFound(key.to_owned()),
            Some(current) => StoreError::Conflict {
                key: key.into(),
                expected,
                current,
            },
        }
    }

    /// etcd's "required revision has been compacted" carries no number; a watch from
    /// `below` (known to be compacted) is answered with the compaction point.
    async fn compaction_point(&self, below: Revision) -> Revision {
        let fallback = below + 1;
        let opts = WatchOptions::new()
            .with_prefix()
            .with_start_revision(below.max(1));
        let mut watch = self.client.watch_client();
        let probe = async {
            let mut stream = watch.watch(self.root.clone(), Some(opts)).await.ok()?;
            while let Ok(Some(resp)) = stream.message().await {
                if resp.compact_revision() > 0 {
                    return Some(resp.compact_revision());
                }
                if resp.canceled() || !resp.events().is_empty() {
                    return None;
                }
            }
            None
        };
        match tokio::time::timeout(self.request_timeout, probe).await {
            Ok(Some(rev)) => rev,
            _ => fallback,
        }
    }

    /// Maps a range error at `requested` (compacted / future revision) to the MemStore's.
    async fn revision_error(&self, requested: Revision, e: etcd_client::Error) -> StoreError {
        match grpc_message(&e) {
            Some(m) if m.contains(COMPACTED) => StoreError::Compacted {
                requested,
                oldest: self.compaction_point(requested).await,
            },
            Some(m) if m.contains(FUTURE) => StoreError::Internal(format!(
                "required revision {requested} is a future revision"
            )),
            _ => self.err(e),
        }
    }
}

const COMPACTED: &str = "required revision has been compacted";
const FUTURE: &str = "required revision is a future revision";

fn grpc_message(e: &etcd_client::Error) -> Option<&str> {
    match e {
        etcd_client::Error::GRpcStatus(s) => Some(s.message()),
        _ => None,
    }
}

/// Network-level failures become `Unavailable` (→ 503 in the apiserver); anything else
/// etcd says is unexpected for this client and becomes `Internal`.
fn map_error(endpoint: &str, e: etcd_client::Error) -> StoreError {
    let unavailable = |message: String| StoreError::Unavailable {
        endpoint: endpoint.to_owned(),
        message,
    };
    match &e {
        etcd_client::Error::GRpcStatus(s) if is_unavailable(s.code() as i32) => {
            unavailable(with_sources(s.message(), s))
        }
        etcd_client::Error::TransportError(t) => unavailable(with_sources(&t.to_string(), t)),
        etcd_client::Error::IoError(io) => unavailable(with_sources(&io.to_string(), io)),
        _ => StoreError::Internal(format!("etcd at {endpoint}: {e}")),
    }
}

/// Appends the root cause (e.g. "Connection refused") to `head`, so the message names
/// what actually failed without repeating every wrapper's text.
fn with_sources(head: &str, e: &(dyn std::error::Error + 'static)) -> String {
    let mut root = None;
    let mut cur = e.source();
    while let Some(s) = cur {
        root = Some(s);
        cur = s.source();
    }
    match root.map(|r| r.to_string()) {
        Some(cause) if !head.contains(&cause) => format!("{head}: {cause}"),
        _ => head.to_owned(),
    }
}

/// Whether a gRPC status code means "etcd is not reachable / not serving right now":
/// CANCELLED (the client's request timeout), UNKNOWN (connection-level failures),
/// DEADLINE_EXCEEDED, UNAVAILABLE (no leader, connection refused). Compared by number
/// so as not to depend on tonic directly.
fn is_unavailable(code: i32) -> bool {
    matches!(code, 1 | 2 | 4 | 14)
}

fn convert_kv(root: &str, kv: &etcd_client::KeyValue) -> Result<KeyValue, StoreError> {
    let full = std::str::from_utf8(kv.key())
        .map_err(|_| StoreError::Internal("etcd returned a non-UTF-8 key".to_owned()))?;
    let key = full.strip_prefix(root).ok_or_else(|| {
        StoreError::Internal(format!("etcd returned key {full:?} outside {root:?}"))
    })?;
    Ok(KeyValue {
        key: key.into(),
        value: Bytes::copy_from_slice(kv.value()).into(),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
    })
}

/// The first key after every key starting with `prefix` (etcd's `GetPrefixRangeEnd`).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // All 0xff (or empty): no upper bound, which etcd spells "\0".
    vec![0]
}

fn header_revision(h: Option<&etcd_client::ResponseHeader>) -> Result<Revision, StoreError> {
    h.map(|h| h.revision())
        .ok_or_else(|| StoreError::Internal("etcd response without header".to_owned()))
}

#[async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let resp = self
            .client
            .kv_client()
            .get(self.full_key(key), None)
            .await
            .map_err(|e| self.err(e))?;
        resp.kvs().first().map(|kv| self.convert(kv)).transpose()
    }

    async fn list(&self, prefix: &str, opts: &ListOptions) -> Result<ListPage, StoreError> {
        let full_prefix = self.full_key(prefix);
        let end = prefix_end(full_prefix.as_bytes());
        // Start strictly after `start_after` (key + "\0" is the next possible key), but
        // never before the prefix itself.
        let start = match &opts.start_after {
            Some(after) => {
                let mut s = self.full_key(after).into_bytes();
                s.push(0);
                s.max(full_prefix.into_bytes())
            }
            None => full_prefix.into_bytes(),
        };
        let requested = opts.revision.filter(|r| *r > 0);
        let mut get = GetOptions::new().with_range(end);
        if let Some(limit) = opts.limit.filter(|l| *l > 0) {
            get = get.with_limit(i64::try_from(limit).unwrap_or(i64::MAX));
        }
        if let Some(rev) = requested {
            get = get.with_revision(rev);
        }
        let resp = match self.client.kv_client().get(start, Some(get)).await {
            Ok(resp) => resp,
            Err(e) => return Err(self.revision_error(requested.unwrap_or(0), e).await),
        };
        let items = resp
            .kvs()
            .iter()
            .map(|kv| self.convert(kv))
            .collect::<Result<Vec<_>, _>>()?;
        let revision = match requested {
            Some(rev) => rev,
            None => header_revision(resp.header())?,
        };
        Ok(ListPage {
            items,
            revision,
            more: resp.more(),
        })
    }

    async fn create(&self, key: &str, value: StoredValue) -> Result<KeyValue, StoreError> {
        let full = self.full_key(key);
        let txn = Txn::new()
            .when([Compare::create_revision(full.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(full, value.bytes().to_vec(), None)]);
        let resp = self
            .client
            .kv_client()
            .txn(txn)
            .await
            .map_err(|e| self.err(e))?;
        if !resp.succeeded() {
            return Err(StoreError::AlreadyExists(key.to_owned()));
        }
        let rev = header_revision(resp.header())?;
        Ok(KeyValue {
            key: key.into(),
            value,
            create_revision: rev,
            mod_revision: rev,
        })
    }

    async fn update(
        &self,
        key: &str,
        value: StoredValue,
        expected: Revision,
    ) -> Result<KeyValue, StoreError> {
        let full = self.full_key(key);
        // `create_revision > 0` keeps `expected == 0` from matching an absent key.
        let txn = Txn::new()
            .when([
                Compare::create_revision(full.clone(), CompareOp::Greater, 0),
                Compare::mod_revision(full.clone(), CompareOp::Equal, expected),
            ])
            .and_then([TxnOp::put(
                full.clone(),
                value.bytes().to_vec(),
                Some(PutOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(full, None)]);
        let resp = self
            .client
            .kv_client()
            .txn(txn)
            .await
            .map_err(|e| self.err(e))?;
        if !resp.succeeded() {
            return Err(self.explain_failed_compare(key, expected, &resp));
        }
        let rev = header_revision(resp.header())?;
        let create_revision = resp
            .op_responses()
            .into_iter()
            .find_map(|op| match op {
                TxnOpResponse::Put(put) => put.prev_key().map(|kv| kv.create_revision()),
                _ => None,
            })
            .ok_or_else(|| {
                StoreError::Internal(format!("etcd put of {key:?} returned no previous value"))
            })?;
        Ok(KeyValue {
            key: key.into(),
            value,
            create_revision,
            mod_revision: rev,
        })
    }

    async fn delete(
        &self,
        key: &str,
        expected: Option<Revision>,
    ) -> Result<(KeyValue, Revision), StoreError> {
        let full = self.full_key(key);
        let mut compares = vec![Compare::create_revision(
            full.clone(),
            CompareOp::Greater,
            0,
        )];
        if let Some(expected) = expected {
            compares.push(Compare::mod_revision(
                full.clone(),
                CompareOp::Equal,
                expected,
            ));
        }
        let txn = Txn::new()
            .when(compares)
            .and_then([TxnOp::delete(
                full.clone(),
                Some(DeleteOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(full, None)]);
        let resp = self
            .client
            .kv_client()
            .txn(txn)
            .await
            .map_err(|e| self.err(e))?;
        if !resp.succeeded() {
            return Err(self.explain_failed_compare(key, expected.unwrap_or(0), &resp));
        }
        let rev = header_revision(resp.header())?;
        let prev = resp
            .op_responses()
            .into_iter()
            .find_map(|op| match op {
                TxnOpResponse::Delete(del) => del.prev_kvs().first().cloned(),
                _ => None,
            })
            .ok_or_else(|| StoreError::NotFound(key.to_owned()))?;
        Ok((self.convert(&prev)?, rev))
    }

    async fn watch(&self, prefix: &str, start: Revision) -> Result<WatchStream, StoreError> {
        let full_prefix = self.full_key(prefix);
        // A replay from `start` also needs the values just before it (each event's previous
        // value), so history must reach back to `start - 1`: a read there tells now whether
        // it does, so that `watch()` fails with `Compacted` as the in-memory store does
        // (etcd itself would report it later, on the stream).
        if start > 1 {
            let probe = GetOptions::new()
                .with_range(prefix_end(full_prefix.as_bytes()))
                .with_revision(start - 1)
                .with_keys_only()
                .with_limit(1);
            if let Err(e) = self
                .client
                .kv_client()
                .get(full_prefix.clone(), Some(probe))
                .await
            {
                match grpc_message(&e) {
                    Some(m) if m.contains(COMPACTED) => {
                        return Err(StoreError::Compacted {
                            requested: start,
                            oldest: self.compaction_point(start - 1).await,
                        })
                    }
                    Some(m) if m.contains(FUTURE) => {}
                    _ => return Err(self.err(e)),
                }
            }
        }

        let mut opts = WatchOptions::new().with_prefix().with_prev_key();
        if start > 0 {
            opts = opts.with_start_revision(start);
        }
        let mut watch = self.client.watch_client();
        let created = async {
            let mut stream = watch
                .watch(full_prefix.clone(), Some(opts))
                .await
                .map_err(|e| self.err(e))?;
            // Wait until etcd has registered the watch, so that every write made after
            // `watch()` returns is seen even when watching from "now".
            loop {
                match stream.message().await.map_err(|e| self.err(e))? {
                    Some(resp) if resp.created() => {
                        if resp.canceled() {
                            return Err(StoreError::Internal(format!(
                                "etcd refused the watch: {}",
                                resp.cancel_reason()
                            )));
                        }
                        // Watching from "now" starts after the revision etcd was at.
                        let from = match resp.header() {
                            Some(h) if start <= 0 => h.revision() + 1,
                            _ => start,
                        };
                        return Ok((stream, from));
                    }
                    Some(_) => continue,
                    None => {
                        return Err(StoreError::Unavailable {
                            endpoint: self.endpoint.clone(),
                            message: "watch stream closed".to_owned(),
                        })
                    }
                }
            }
        };
        let (stream, from) = tokio::time::timeout(self.request_timeout, created)
            .await
            .map_err(|_| StoreError::Unavailable {
                endpoint: self.endpoint.clone(),
                message: "timed out creating a watch".to_owned(),
            })??;

        let state = WatchState {
            stream,
            root: self.root.clone(),
            endpoint: self.endpoint.clone(),
            next: from,
            pending: VecDeque::new(),
            done: false,
        };
        Ok(futures::stream::unfold(state, WatchState::next_item).boxed())
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        let opts = GetOptions::new().with_count_only();
        let resp = self
            .client
            .kv_client()
            .get(self.root.clone(), Some(opts))
            .await
            .map_err(|e| self.err(e))?;
        header_revision(resp.header())
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        let opts = CompactionOptions::new().with_physical();
        match self.client.kv_client().compact(revision, Some(opts)).await {
            Ok(_) => Ok(()),
            Err(e) => match grpc_message(&e) {
                Some(m) if m.contains(COMPACTED) => Err(StoreError::Compacted {
                    requested: revision,
                    // `revision` is at or below the compaction point, so a watch from
                    // just below it is compacted and reports where history starts.
                    oldest: if revision > 1 {
                        self.compaction_point(revision - 1).await
                    } else {
                        revision
                    },
                }),
                Some(m) if m.contains(FUTURE) => Err(StoreError::Internal(format!(
                    "cannot compact to future revision {revision}"
                ))),
                _ => Err(self.err(e)),
            },
        }
    }

    fn describe(&self) -> String {
        format!("etcd://{}", self.endpoint)
    }
}

/// A live etcd watch turned into `WatchEvent`s. Holding `stream` keeps the gRPC watch
/// open (dropping it cancels the watch on the server).
struct WatchState {
    stream: etcd_client::WatchStream,
    root: String,
    endpoint: String,
    /// The first revision not yet delivered: what a compaction notice was "requested".
    next: Revision,
    pending: VecDeque<Result<WatchEvent, StoreError>>,
    done: bool,
}

impl WatchState {
    async fn next_item(mut self) -> Option<(Result<WatchEvent, StoreError>, Self)> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                if item.is_err() {
                    self.done = true;
                    self.pending.clear();
                } else if let Ok(ev) = &item {
                    self.next = ev.revision() + 1;
                }
                return Some((item, self));
            }
            if self.done {
                return None;
            }
            match self.stream.message().await {
                Ok(Some(resp)) => self.absorb(&resp),
                Ok(None) => self.pending.push_back(Err(StoreError::Unavailable {
                    endpoint: self.endpoint.clone(),
                    message: "watch stream closed by the server".to_owned(),
                })),
                Err(e) => self.pending.push_back(Err(map_error(&self.endpoint, e))),
            }
        }
    }

    fn absorb(&mut self, resp: &WatchResponse) {
        for ev in resp.events() {
            self.pending.push_back(self.convert_event(ev));
        }
        if resp.compact_revision() > 0 {
            self.pending.push_back(Err(StoreError::Compacted {
                requested: self.next,
                oldest: resp.compact_revision(),
            }));
        } else if resp.canceled() {
            self.pending.push_back(Err(StoreError::Internal(format!(
                "etcd cancelled the watch: {}",
                resp.cancel_reason()
            ))));
        }
    }

    fn convert_event(&self, ev: &etcd_client::Event) -> Result<WatchEvent, StoreError> {
        let kv = ev
            .kv()
            .ok_or_else(|| StoreError::Internal("etcd watch event without kv".to_owned()))?;
        // An update or delete whose previous value etcd could no longer supply (compacted
        // meanwhile) cannot be reported faithfully: the watcher must relist, as after any
        // compaction. The compaction point is at least this revision.
        let prev = || {
            ev.prev_kv()
                .map(|p| convert_kv(&self.root, p))
                .transpose()?
                .ok_or(StoreError::Compacted {
                    requested: kv.mod_revision(),
                    oldest: kv.mod_revision(),
                })
        };
        match ev.event_type() {
            EventType::Put => {
                let prev = if kv.create_revision() == kv.mod_revision() {
                    None
                } else {
                    Some(prev()?)
                };
                Ok(WatchEvent::Put {
                    kv: convert_kv(&self.root, kv)?,
                    prev,
                })
            }
            EventType::Delete => Ok(WatchEvent::Delete {
                prev: prev()?,
                revision: kv.mod_revision(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_store_urls() {
        assert_eq!(
            parse_store_url("etcd://127.0.0.1:2379").unwrap(),
            vec!["127.0.0.1:2379"]
        );
        assert_eq!(
            parse_store_url("etcd://h1:2379,h2:2380/").unwrap(),
            vec!["h1:2379", "h2:2380"]
        );
        assert!(parse_store_url("http://h1:2379").is_err());
        assert!(parse_store_url("etcd://h1").is_err());
        assert!(parse_store_url("etcd://h1:2379,").is_err());
        assert!(parse_store_url("etcd://:2379").is_err());
    }

    #[test]
    fn prefix_end_is_the_next_key() {
        assert_eq!(prefix_end(b"/registry/pods/"), b"/registry/pods0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff"), vec![0]);
    }
}
