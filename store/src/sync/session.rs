//! Whole sessions, one per side and purpose, as message-in, messages-out state machines:
//! [`Server`] serves fetches and pushes; [`FetchClient`] and [`PushClient`] drive them.
//! A transport (TCP + TLS, or an in-memory link in tests) only moves their messages.

use super::SyncError;
use super::message::{Message, Mode, RefUpdate, VERSION};
use super::receive::{FetchReport, Receiver};
use super::send::Sender;
use crate::hash::Hash;
use crate::store::Store;

/// One side of a session.
pub trait Endpoint {
    /// The messages that open the session (none for the side that waits).
    fn start(&mut self) -> Result<Vec<Message>, SyncError>;
    /// Handles one message from the peer; returns the replies.
    fn handle(&mut self, message: Message) -> Result<Vec<Message>, SyncError>;
    /// Whether this side has finished (the transport may then close).
    fn is_done(&self) -> bool;
}

/// The serving side of one connection: one session after another (each opened by a
/// [`Message::Hello`]) until the peer hangs up.
pub struct Server {
    store: Store,
    state: ServerState,
}

enum ServerState {
    Greeting,
    Serving(Sender),
    AwaitingPush,
    Receiving(Box<Receiver>, Vec<RefUpdate>),
    Finished,
}

impl Server {
    /// Serves `store` to one peer.
    pub fn new(store: Store) -> Server {
        Server {
            store,
            state: ServerState::Greeting,
        }
    }

    /// Applies pushed ref moves: each must be a fast-forward from what the pusher saw.
    fn apply(&self, updates: &[RefUpdate]) -> Result<Vec<Option<String>>, SyncError> {
        let mut results = Vec::new();
        for u in updates {
            let current = self.store.head(&u.name)?;
            let result = if !super::travels(&u.name) {
                Some(format!(
                    "{} is a tracking or local branch, which no push may set",
                    u.name
                ))
            } else if current != u.old {
                Some(format!(
                    "{} moved meanwhile; fetch and merge, then push again",
                    u.name
                ))
            } else if current.is_some_and(|c| !self.store.is_ancestor(c, u.new).unwrap_or(false)) {
                Some(format!(
                    "not a fast-forward of {}; fetch and merge first",
                    u.name
                ))
            } else {
                match self.store.set_branch(&u.name, u.old, Some(u.new)) {
                    Ok(()) => None,
                    Err(e) => Some(e.to_string()),
                }
            };
            results.push(result);
        }
        Ok(results)
    }
}

impl Endpoint for Server {
    fn start(&mut self) -> Result<Vec<Message>, SyncError> {
        Ok(Vec::new())
    }

    fn handle(&mut self, message: Message) -> Result<Vec<Message>, SyncError> {
        match (&mut self.state, message) {
            (
                ServerState::Greeting | ServerState::Serving(_) | ServerState::Finished,
                Message::Hello { version, mode },
            ) => {
                if version != VERSION {
                    return Err(SyncError::Protocol(format!(
                        "peer speaks version {version}, this side {VERSION}"
                    )));
                }
                let hello = Message::Hello {
                    version: VERSION,
                    mode,
                };
                let mut branches = self.store.branches()?;
                branches.retain(|(name, _)| super::travels(name));
                let refs = Message::Refs(branches);
                self.state = match mode {
                    Mode::Fetch => ServerState::Serving(Sender::new(self.store.clone())),
                    Mode::Push => ServerState::AwaitingPush,
                };
                Ok(vec![hello, refs])
            }
            (ServerState::Serving(sender), message) => match sender.answer(&message)? {
                Some(reply) => Ok(vec![reply]),
                None => Err(SyncError::Protocol("a fetching peer may only ask".into())),
            },
            (ServerState::AwaitingPush, Message::Push(updates)) => {
                let wants = updates.iter().map(|u| u.new).collect();
                let (receiver, first) = Receiver::start(self.store.clone(), wants)?;
                self.state = ServerState::Receiving(Box::new(receiver), updates);
                self.after_receive(first)
            }
            (ServerState::Receiving(receiver, _), message) => {
                let out = receiver.handle(message)?;
                self.after_receive(out)
            }
            (_, Message::Error(e)) => Err(SyncError::Peer(e)),
            (_, _) => Err(SyncError::Protocol("message out of order".into())),
        }
    }

    /// Never: a connection may hold several sessions (a fetch, then a push), so the
    /// server serves until the peer hangs up.
    fn is_done(&self) -> bool {
        false
    }
}

impl Server {
    /// Passes the receiver's messages on; once it is done, moves the refs and reports.
    fn after_receive(&mut self, out: Vec<Message>) -> Result<Vec<Message>, SyncError> {
        let ServerState::Receiving(receiver, updates) = &self.state else {
            return Ok(out);
        };
        if !receiver.is_done() {
            return Ok(out);
        }
        let results = self.apply(updates)?;
        self.state = ServerState::Finished;
        Ok(vec![Message::Pushed(results)])
    }
}

/// Fetches a peer's branches into the local store. When done, [`FetchClient::refs`]
/// holds the peer's branches, all of whose commits are then local; moving local refs is
/// the caller's choice (remote-tracking refs, merge), made before dropping the client.
pub struct FetchClient {
    store: Store,
    state: FetchState,
    refs: Vec<(String, Hash)>,
}

enum FetchState {
    Greeting,
    AwaitingRefs,
    Receiving(Receiver),
    /// Keeps the finished receiver, and with it the gc lock, until the client is dropped.
    Done {
        report: FetchReport,
        _receiver: Receiver,
    },
}

impl FetchClient {
    /// A fetch into `store`.
    pub fn new(store: Store) -> FetchClient {
        FetchClient {
            store,
            state: FetchState::Greeting,
            refs: Vec::new(),
        }
    }

    /// The peer's branches (known once the peer answered).
    pub fn refs(&self) -> &[(String, Hash)] {
        &self.refs
    }

    /// What the fetch brought, once done.
    pub fn report(&self) -> Option<&FetchReport> {
        match &self.state {
            FetchState::Done { report, .. } => Some(report),
            FetchState::Receiving(r) => Some(r.report()),
            _ => None,
        }
    }

    fn receiving(&mut self, receiver: Receiver, out: Vec<Message>) -> Vec<Message> {
        self.state = if receiver.is_done() {
            FetchState::Done {
                report: receiver.report().clone(),
                _receiver: receiver,
            }
        } else {
            FetchState::Receiving(receiver)
        };
        out
    }
}

impl Endpoint for FetchClient {
    fn start(&mut self) -> Result<Vec<Message>, SyncError> {
        self.state = FetchState::AwaitingRefs;
        Ok(vec![Message::Hello {
            version: VERSION,
            mode: Mode::Fetch,
        }])
    }

    fn handle(&mut self, message: Message) -> Result<Vec<Message>, SyncError> {
        match (
            std::mem::replace(&mut self.state, FetchState::Greeting),
            message,
        ) {
            (FetchState::AwaitingRefs, Message::Hello { version, .. }) if version == VERSION => {
                self.state = FetchState::AwaitingRefs;
                Ok(Vec::new())
            }
            (FetchState::AwaitingRefs, Message::Refs(refs)) => {
                let wants = refs.iter().map(|(_, h)| *h).collect();
                self.refs = refs;
                let (receiver, out) = Receiver::start(self.store.clone(), wants)?;
                Ok(self.receiving(receiver, out))
            }
            (FetchState::Receiving(mut receiver), message) => {
                let out = receiver.handle(message)?;
                Ok(self.receiving(receiver, out))
            }
            (_, Message::Error(e)) => Err(SyncError::Peer(e)),
            (_, _) => Err(SyncError::Protocol("message out of order".into())),
        }
    }

    fn is_done(&self) -> bool {
        matches!(self.state, FetchState::Done { .. })
    }
}

/// Chooses a push's ref moves from the peer's branches.
type PickUpdates = Box<dyn FnMut(&[(String, Hash)]) -> Vec<RefUpdate> + Send>;

/// Pushes local commits and asks the peer to move its branches to them.
pub struct PushClient {
    sender: Sender,
    updates: Vec<RefUpdate>,
    pick: PickUpdates,
    results: Option<Vec<Option<String>>>,
}

impl PushClient {
    /// A push from `store`; `pick` chooses the ref moves given the peer's branches.
    pub fn new(
        store: Store,
        pick: impl FnMut(&[(String, Hash)]) -> Vec<RefUpdate> + Send + 'static,
    ) -> PushClient {
        PushClient {
            sender: Sender::new(store),
            updates: Vec::new(),
            pick: Box::new(pick),
            results: None,
        }
    }

    /// Each requested move and its outcome (`None`: done), once the peer answered.
    pub fn results(&self) -> Option<Vec<(RefUpdate, Option<String>)>> {
        self.results.as_ref().map(|r| {
            self.updates
                .iter()
                .cloned()
                .zip(r.iter().cloned())
                .collect()
        })
    }
}

impl Endpoint for PushClient {
    fn start(&mut self) -> Result<Vec<Message>, SyncError> {
        Ok(vec![Message::Hello {
            version: VERSION,
            mode: Mode::Push,
        }])
    }

    fn handle(&mut self, message: Message) -> Result<Vec<Message>, SyncError> {
        match message {
            Message::Hello { .. } => Ok(Vec::new()),
            Message::Refs(refs) => {
                self.updates = (self.pick)(&refs);
                if self.updates.is_empty() {
                    self.results = Some(Vec::new());
                    return Ok(Vec::new());
                }
                Ok(vec![Message::Push(self.updates.clone())])
            }
            Message::Pushed(results) => {
                self.results = Some(results);
                Ok(Vec::new())
            }
            Message::Error(e) => Err(SyncError::Peer(e)),
            question => match self.sender.answer(&question)? {
                Some(reply) => Ok(vec![reply]),
                None => Err(SyncError::Protocol("message out of order".into())),
            },
        }
    }

    fn is_done(&self) -> bool {
        self.results.is_some()
    }
}
