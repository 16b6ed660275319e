//! One IMAP connection as a state machine over the store: client bytes in, server bytes
//! out. No sockets, no clock of its own; the store is the only thing it touches.
//!
//! `imap-codec`'s fragmentizer splits the input into lines and literals and answers
//! synchronizing literals with a continuation; each complete command is decoded by
//! `imap-codec` and every response encoded by it. The selected mailbox is a snapshot
//! (UID, blob, flags per sequence number) brought up to date from the branch head after
//! each command and when the shell reports a store change ([`Session::changed`]); so
//! IDLE clients hear of mail delivered or flags changed by any process or replica.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::io::{self, Write};
use std::num::{NonZeroU32, NonZeroU64};
use std::sync::Arc;

pub use crate::Accounts;

use chrono::{DateTime as ChronoDateTime, FixedOffset};
use imap_codec::decode::Decoder;
use imap_codec::encode::Encoder;
use imap_codec::fragmentizer::{FragmentInfo, Fragmentizer, LiteralAnnouncement};
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::auth::{AuthMechanism, AuthenticateData};
use imap_codec::imap_types::command::{
    Command, CommandBody, FetchModifier, SelectParameter, StoreModifier,
};
use imap_codec::imap_types::core::{LiteralMode, Tag, Vec1};
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::extensions::enable::CapabilityEnable;
use imap_codec::imap_types::extensions::uidplus::{UidElement, UidSet};
use imap_codec::imap_types::fetch::{
    Macro, MacroOrMessageDataItemNames, MessageDataItem, MessageDataItemName, Section,
};
use imap_codec::imap_types::flag::{
    Flag, FlagFetch, FlagNameAttribute, FlagPerm, StoreResponse, StoreType,
};
use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox as ImapMailbox};
use imap_codec::imap_types::response::{
    Capability, Code, CommandContinuationRequest, Data, Greeting, Response, Status,
};
use imap_codec::imap_types::search::SearchKey;
use imap_codec::imap_types::sequence::SequenceSet;
use imap_codec::imap_types::status::{StatusDataItem, StatusDataItemName};
use imap_codec::{
    AuthenticateDataCodec, CommandCodec, GreetingCodec, IdleDoneCodec, ResponseCodec,
};
use kith_store::{Hash, Store};

use super::list_extended::{self, ExtendedList};
use super::mime::{self, Parsed, header_end, istring};
use super::search::{self, Candidate};
use super::utf7;
use crate::mailbox::{self, Error, Key, Mailbox};

/// The largest command accepted (an APPEND's message included), in bytes.
const MAX_COMMAND: u32 = 64 << 20;
/// Output goes to the sink whenever this much waits, so a FETCH of a whole mailbox is
/// never held in memory at once.
const CHUNK: usize = 64 << 10;
/// Most bytes of message headers a session keeps at hand (each counted with 64 more
/// for its bookkeeping).
const HEADER_CACHE: usize = 4 << 20;
/// Most messages given UIDs in one commit: small commits keep the memory of a large
/// import's first SELECT small.
const UID_BATCH: usize = 2000;
/// How an INTERNALDATE given by APPEND is kept (RFC 3501's `date-time`, zero-padded).
const DATE_FORMAT: &str = "%d-%b-%Y %H:%M:%S %z";
/// The hierarchy delimiter of mailbox names.
const DELIMITER: char = '/';
/// Mailboxes given a SPECIAL-USE attribute (RFC 6154) by name.
const SPECIAL_USE: [(&str, &str); 6] = [
    ("Archive", "Archive"),
    ("Drafts", "Drafts"),
    ("Junk", "Junk"),
    ("Sent", "Sent"),
    ("Trash", "Trash"),
    ("Spam", "Junk"),
];

/// Where a session reads and writes.
#[derive(Clone)]
pub struct Config {
    /// The store.
    pub store: Store,
    /// The branch mail lives on.
    pub branch: String,
    /// The author of the session's commits.
    pub author: String,
    /// Who may log in.
    pub accounts: Arc<dyn Accounts>,
}

/// What the connection is waiting for.
enum Mode {
    Command,
    Authenticate(Tag<'static>),
    Idle(Tag<'static>),
}

/// One message of the selected mailbox.
#[derive(Clone, Debug, PartialEq)]
struct Entry {
    uid: u32,
    blob: Hash,
    flags: BTreeSet<String>,
    modseq: u64,
    /// The blob of the INTERNALDATE an APPEND gave, if any.
    date: Option<Hash>,
}

/// The selected mailbox.
struct Selected {
    mailbox: Mailbox,
    read_only: bool,
    validity: u32,
    uidnext: u32,
    entries: Vec<Entry>,
    /// The root tree the snapshot was last brought up to.
    seen: Option<Hash>,
}

/// One IMAP conversation.
pub struct Session {
    config: Config,
    input: Fragmentizer,
    mode: Mode,
    user: Option<String>,
    selected: Option<Selected>,
    out: Vec<u8>,
    /// Why the sink failed: the session then ends.
    broken: Option<io::Error>,
    closed: bool,
    /// Whether the client asked for CONDSTORE (ENABLE, or a MODSEQ use): flag updates
    /// then carry MODSEQ.
    condstore: bool,
    /// Whether the client enabled QRESYNC: expunges are then told as VANISHED.
    qresync: bool,
    /// Whether the client enabled IMAP4rev2 or UTF8=ACCEPT: mailbox names are then
    /// UTF-8, else modified UTF-7.
    utf8: bool,
    /// Headers read lately, by blob: clients list the same headers again and again.
    headers: HashMap<Hash, Arc<[u8]>>,
    /// Their size, as counted against [`HEADER_CACHE`].
    headers_size: usize,
}

/// How much of each message a FETCH reads (the least first).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Need {
    Nothing,
    Header,
    Whole,
}

/// A message's bytes as read for a FETCH: all of them, or its header.
enum Raw {
    Read(Vec<u8>),
    Header(Arc<[u8]>),
}

impl std::ops::Deref for Raw {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Raw::Read(bytes) => bytes,
            Raw::Header(bytes) => bytes,
        }
    }
}

/// What a client knows of a mailbox it resynchronizes (SELECT ... (QRESYNC ...)).
struct Resync {
    validity: u32,
    modseq: u64,
    known: Option<SequenceSet>,
}

/// A command's failure: `NO` with this text.
type Failure = String;

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        e.to_string()
    }
}

impl Session {
    /// A new conversation, not logged in.
    pub fn new(config: Config) -> Session {
        Session {
            config,
            input: Fragmentizer::new(MAX_COMMAND),
            mode: Mode::Command,
            user: None,
            selected: None,
            out: Vec::new(),
            broken: None,
            closed: false,
            condstore: false,
            qresync: false,
            utf8: false,
            headers: HashMap::new(),
            headers_size: 0,
        }
    }

    /// The greeting to send first.
    pub fn greeting(&self) -> Vec<u8> {
        let greeting = Greeting::ok(
            Some(Code::Capability(capabilities(false))),
            "Kith IMAP ready",
        )
        .expect("a valid greeting");
        GreetingCodec::default().encode(&greeting).dump()
    }

    /// Whether the client logged out.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Whether the client is in IDLE.
    pub fn is_idle(&self) -> bool {
        matches!(self.mode, Mode::Idle(_))
    }

    /// Takes bytes from the client and writes the answers to `sink` as they are made: a
    /// long FETCH goes out message by message, in pieces of about 64 KiB.
    pub fn feed(&mut self, bytes: &[u8], sink: &mut dyn Write) -> io::Result<()> {
        self.input.enqueue_bytes(bytes);
        while !self.closed {
            let Some(info) = self.input.progress() else {
                break;
            };
            if let FragmentInfo::Line {
                announcement:
                    Some(LiteralAnnouncement {
                        mode: LiteralMode::Sync,
                        length,
                    }),
                ..
            } = info
                && matches!(self.mode, Mode::Command)
            {
                self.continue_literal(length);
            }
            if self.input.is_message_complete() {
                self.message(sink);
            }
            self.spill(sink, CHUNK);
        }
        self.spill(sink, 0);
        self.broken.take().map_or(Ok(()), Err)
    }

    /// The store changed: writes the updates to tell an idling client to `sink`
    /// (nothing otherwise; the others hear at their next command).
    pub fn changed(&mut self, sink: &mut dyn Write) -> io::Result<()> {
        if self.is_idle() {
            self.refresh(true);
        }
        self.spill(sink, 0);
        self.broken.take().map_or(Ok(()), Err)
    }

    /// Hands the waiting output to `sink` once at least `least` bytes wait; `false`
    /// when the sink failed (the session is then closed).
    fn spill(&mut self, sink: &mut dyn Write, least: usize) -> bool {
        if self.out.is_empty() || self.out.len() < least || self.broken.is_some() {
            return self.broken.is_none();
        }
        match sink.write_all(&self.out) {
            Ok(()) => {
                self.out.clear();
                true
            }
            Err(e) => {
                self.broken = Some(e);
                self.closed = true;
                false
            }
        }
    }

    fn continue_literal(&mut self, length: u32) {
        if length > MAX_COMMAND {
            let tag = self.input.decode_tag().map(|t| t.into_static());
            // The client must not send a refused synchronizing literal: start afresh.
            self.input = Fragmentizer::new(MAX_COMMAND);
            self.send(Response::Status(
                Status::no(tag, Some(Code::TooBig), "message too large").expect("valid"),
            ));
            return;
        }
        let ready = CommandContinuationRequest::basic(None, "ready").expect("valid");
        self.send(Response::CommandContinuationRequest(ready));
    }

    /// Handles one complete message (command, authentication data, or DONE).
    fn message(&mut self, sink: &mut dyn Write) {
        match std::mem::replace(&mut self.mode, Mode::Command) {
            Mode::Idle(tag) => self.idle_done(tag),
            Mode::Authenticate(tag) => self.auth_data(tag),
            Mode::Command => self.command(sink),
        }
    }

    fn idle_done(&mut self, tag: Tag<'static>) {
        if self.input.decode_message(&IdleDoneCodec::default()).is_ok() {
            self.tagged_ok(tag, None, "IDLE done");
        } else {
            self.mode = Mode::Idle(tag);
            self.untagged_bad("expected DONE");
        }
    }

    fn command(&mut self, sink: &mut dyn Write) {
        if let Some(list) = list_extended::parse(self.input.message_bytes()) {
            return self.extended_list(list);
        }
        let (esearch, decoded) = {
            let bytes = self.input.message_bytes();
            match strip_search_return(bytes) {
                Some((options, stripped)) => (
                    Some(options),
                    CommandCodec::default()
                        .decode(&stripped)
                        .ok()
                        .filter(|(rest, _)| rest.is_empty())
                        .map(|(_, c)| c.into_static()),
                ),
                None => (
                    None,
                    self.input
                        .decode_message(&CommandCodec::default())
                        .ok()
                        .map(|c| c.into_static()),
                ),
            }
        };
        match decoded {
            Some(command) => self.execute(command, esearch, sink),
            None => {
                let tag = self.input.decode_tag().map(|t| t.into_static());
                self.bad(
                    tag,
                    "could not parse the command; see RFC 9051 for its syntax",
                );
            }
        }
    }

    /// Answers an extended LIST (RFC 5258), which the codec cannot parse.
    fn extended_list(&mut self, list: Result<ExtendedList, String>) {
        let tag = self.input.decode_tag().map(|t| t.into_static());
        let list = match (list, &tag) {
            (Ok(list), Some(_)) => list,
            (Err(why), _) => return self.bad(tag, &why),
            (Ok(_), None) => return self.untagged_bad("a command needs a valid tag"),
        };
        let tag = tag.expect("checked above");
        if self.user.is_none() {
            return self.bad(Some(tag), "log in first (LOGIN or AUTHENTICATE PLAIN)");
        }
        match self.list_matching(&list, false) {
            Ok(_) => {
                self.refresh(true);
                self.tagged_ok(tag, None, "LIST done");
            }
            Err(text) => self.send(Response::Status(
                Status::no(Some(tag), None, text.as_str()).expect("valid"),
            )),
        }
    }

    fn execute(
        &mut self,
        command: Command<'static>,
        esearch: Option<Vec<String>>,
        sink: &mut dyn Write,
    ) {
        let tag = command.tag;
        let name = command.body.name();
        let logged_in = self.user.is_some();
        let needs_selected = matches!(
            command.body,
            CommandBody::Fetch { .. }
                | CommandBody::Store { .. }
                | CommandBody::Search { .. }
                | CommandBody::Copy { .. }
                | CommandBody::Move { .. }
                | CommandBody::Expunge
                | CommandBody::ExpungeUid { .. }
                | CommandBody::Close
                | CommandBody::Unselect
                | CommandBody::Check
        );
        let anytime = matches!(
            command.body,
            CommandBody::Capability
                | CommandBody::Noop
                | CommandBody::Logout
                | CommandBody::Id { .. }
                | CommandBody::Login { .. }
                | CommandBody::Authenticate { .. }
        );
        if !anytime && !logged_in {
            return self.bad(Some(tag), "log in first (LOGIN or AUTHENTICATE PLAIN)");
        }
        if needs_selected && self.selected.is_none() {
            return self.bad(Some(tag), "select a mailbox first");
        }
        // Only these may not report expunges (RFC 9051, section 7.5.1).
        let quiet = matches!(
            command.body,
            CommandBody::Fetch { uid: false, .. }
                | CommandBody::Store { uid: false, .. }
                | CommandBody::Search { uid: false, .. }
        );
        let result = self.run(&tag, command.body, esearch, sink);
        if self.closed {
            return;
        }
        match result {
            Ok(Some((code, text))) => {
                self.refresh(!quiet);
                self.tagged_ok(tag, code, &text);
            }
            Ok(None) => {}
            Err(text) => {
                tracing::debug!("imap {name} failed: {text}");
                self.send(Response::Status(
                    Status::no(Some(tag), None, text.as_str()).expect("valid"),
                ));
            }
        }
    }

    /// Runs a command; `Ok(None)` when it answered (or will answer) itself.
    fn run(
        &mut self,
        tag: &Tag<'static>,
        body: CommandBody<'static>,
        esearch: Option<Vec<String>>,
        sink: &mut dyn Write,
    ) -> Result<Option<(Option<Code<'static>>, String)>, Failure> {
        let done = |text: &str| Ok(Some((None, text.to_string())));
        match body {
            CommandBody::Capability => {
                self.send(Response::Data(Data::Capability(capabilities(
                    self.user.is_some(),
                ))));
                done("CAPABILITY done")
            }
            CommandBody::Noop | CommandBody::Check => done("NOOP done"),
            CommandBody::Logout => {
                let bye = Status::bye(None, "Kith IMAP closing").expect("valid");
                self.send(Response::Status(bye));
                self.tagged_ok(tag.clone(), None, "LOGOUT done");
                self.closed = true;
                Ok(None)
            }
            CommandBody::Id { .. } => {
                let parameters = Some(vec![(
                    istring("name"),
                    super::mime::nstring(Some("Kith".into())),
                )]);
                self.send(Response::Data(Data::Id { parameters }));
                done("ID done")
            }
            CommandBody::Login { username, password } => {
                let user = String::from_utf8_lossy(username.as_ref()).into_owned();
                let password = String::from_utf8_lossy(password.declassify().as_ref()).into_owned();
                self.login(&user, &password)
            }
            CommandBody::Authenticate {
                mechanism,
                initial_response,
            } => {
                if mechanism != AuthMechanism::Plain {
                    return Err("only AUTHENTICATE PLAIN is offered".into());
                }
                match initial_response {
                    Some(data) => self.plain(data.declassify()),
                    None => {
                        self.send(Response::CommandContinuationRequest(
                            CommandContinuationRequest::base64(b"".as_slice()),
                        ));
                        self.mode = Mode::Authenticate(tag.clone());
                        Ok(None)
                    }
                }
            }
            CommandBody::Enable { capabilities } => {
                let enabled: Vec<CapabilityEnable<'static>> = capabilities
                    .into_iter()
                    .filter(|c| {
                        let name = c.to_string();
                        name.eq_ignore_ascii_case("IMAP4rev2")
                            || name.eq_ignore_ascii_case("UTF8=ACCEPT")
                            || name.eq_ignore_ascii_case("CONDSTORE")
                            || name.eq_ignore_ascii_case("QRESYNC")
                    })
                    .collect();
                self.qresync |= enabled.iter().any(|c| c.to_string() == "QRESYNC");
                self.utf8 |= enabled
                    .iter()
                    .any(|c| c.to_string() != "QRESYNC" && c.to_string() != "CONDSTORE");
                self.condstore |= self.qresync || enabled.contains(&CapabilityEnable::CondStore);
                self.send(Response::Data(Data::Enabled {
                    capabilities: enabled,
                }));
                done("ENABLE done")
            }
            CommandBody::Namespace => {
                self.send_raw(b"* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n");
                done("NAMESPACE done")
            }
            CommandBody::Select {
                mailbox,
                parameters,
            } => self.select_with(tag, &mailbox, false, parameters),
            CommandBody::Examine {
                mailbox,
                parameters,
            } => self.select_with(tag, &mailbox, true, parameters),
            CommandBody::Unselect => {
                self.selected = None;
                done("UNSELECT done")
            }
            CommandBody::Close => {
                if self.selected.as_ref().is_some_and(|s| !s.read_only) {
                    self.expunge(None, true)?;
                }
                self.selected = None;
                done("CLOSE done")
            }
            CommandBody::Create { mailbox } => self.create(&mailbox),
            CommandBody::Delete { mailbox } => self.delete(&mailbox),
            CommandBody::Rename { from, to } => self.rename(&from, &to),
            CommandBody::Subscribe { mailbox } => self.subscribe(&mailbox, true),
            CommandBody::Unsubscribe { mailbox } => self.subscribe(&mailbox, false),
            CommandBody::List {
                reference,
                mailbox_wildcard,
            } => self.list(&reference, &mailbox_wildcard, false),
            CommandBody::Lsub {
                reference,
                mailbox_wildcard,
            } => self.list(&reference, &mailbox_wildcard, true),
            CommandBody::Status {
                mailbox,
                item_names,
            } => self.status(&mailbox, &item_names),
            CommandBody::Append {
                mailbox,
                flags,
                date,
                message,
            } => {
                let bytes = match message {
                    imap_codec::imap_types::extensions::binary::LiteralOrLiteral8::Literal(l) => {
                        l.data().to_vec()
                    }
                    imap_codec::imap_types::extensions::binary::LiteralOrLiteral8::Literal8(l) => {
                        l.data.to_vec()
                    }
                };
                self.append(&mailbox, &flags, date.as_ref(), &bytes)
            }
            CommandBody::Fetch {
                sequence_set,
                macro_or_item_names,
                uid,
                modifiers,
            } => {
                let since = modifiers.iter().find_map(|m| match m {
                    FetchModifier::ChangedSince(n) => Some(n.get()),
                    FetchModifier::Vanished => None,
                });
                if modifiers.contains(&FetchModifier::Vanished) {
                    if !(uid && self.qresync && since.is_some()) {
                        self.bad(
                            Some(tag.clone()),
                            "VANISHED needs ENABLE QRESYNC, UID FETCH and CHANGEDSINCE",
                        );
                        return Ok(None);
                    }
                    self.send_vanished(&sequence_set, since.unwrap_or(0))?;
                }
                self.fetch(&sequence_set, macro_or_item_names, uid, since, sink)
            }
            CommandBody::Store {
                sequence_set,
                kind,
                response,
                flags,
                uid,
                modifiers,
            } => {
                let since = modifiers
                    .iter()
                    .map(|StoreModifier::UnchangedSince(n)| *n)
                    .next();
                self.store(&sequence_set, kind, response, &flags, uid, since)
            }
            CommandBody::Search { criteria, uid, .. } => self.search(criteria, uid, esearch),
            CommandBody::Copy {
                sequence_set,
                mailbox,
                uid,
            } => self.copy(&sequence_set, &mailbox, uid, false),
            CommandBody::Move {
                sequence_set,
                mailbox,
                uid,
            } => self.copy(&sequence_set, &mailbox, uid, true),
            CommandBody::Expunge => self.expunge(None, false),
            CommandBody::ExpungeUid { sequence_set } => self.expunge(Some(&sequence_set), false),
            CommandBody::Idle => {
                self.refresh(true);
                let idling = CommandContinuationRequest::basic(None, "idling").expect("valid");
                self.send(Response::CommandContinuationRequest(idling));
                self.mode = Mode::Idle(tag.clone());
                Ok(None)
            }
            other => Err(format!("{} is not supported here", other.name())),
        }
    }

    // ----- Authentication -----

    fn login(
        &mut self,
        user: &str,
        password: &str,
    ) -> Result<Option<(Option<Code<'static>>, String)>, Failure> {
        if self.user.is_some() {
            return Err("already logged in".into());
        }
        if !self.config.accounts.verify(user, password) {
            tracing::info!("imap: refused a login for {user:?}");
            return Err("[AUTHENTICATIONFAILED] wrong user name or password; accounts are made with `kith user add`".into());
        }
        let inbox = Mailbox::of(user, "INBOX")?;
        let root = self.head()?;
        if !inbox.exists(&self.config.store, &root)? {
            let validity = (kith_store::now_millis() / 1000) as u32;
            self.write("mail: create INBOX", |_, tx| inbox.create(tx, validity))?;
        }
        self.user = Some(user.to_string());
        Ok(Some((
            Some(Code::Capability(capabilities(true))),
            "logged in".into(),
        )))
    }

    fn auth_data(&mut self, tag: Tag<'static>) {
        let data = match self.input.decode_message(&AuthenticateDataCodec::default()) {
            Ok(AuthenticateData::Continue(data)) => data.declassify().to_vec(),
            Ok(AuthenticateData::Cancel) => return self.bad(Some(tag), "AUTHENTICATE cancelled"),
            Err(_) => return self.bad(Some(tag), "expected base64 PLAIN credentials"),
        };
        match self.plain(&data) {
            Ok(Some((code, text))) => self.tagged_ok(tag, code, &text),
            Ok(None) => {}
            Err(text) => self.send(Response::Status(
                Status::no(Some(tag), None, text.as_str()).expect("valid"),
            )),
        }
    }

    /// SASL PLAIN (RFC 4616): authzid NUL authcid NUL password.
    fn plain(&mut self, data: &[u8]) -> Result<Option<(Option<Code<'static>>, String)>, Failure> {
        let parts: Vec<&[u8]> = data.split(|&b| b == 0).collect();
        let [authz, user, password] = parts[..] else {
            return Err("malformed PLAIN credentials".into());
        };
        if !authz.is_empty() && authz != user {
            return Err("logging in as another user is not allowed".into());
        }
        let user = String::from_utf8_lossy(user).into_owned();
        self.login(&user, &String::from_utf8_lossy(password))
    }

    // ----- Mailboxes -----

    fn user(&self) -> &str {
        self.user.as_deref().unwrap_or_default()
    }

    fn head(&self) -> Result<Hash, Error> {
        Ok(self.config.store.head_tree(&self.config.branch)?)
    }

    /// The store mailbox an IMAP mailbox name means (`inbox` in any case is INBOX).
    fn mailbox(&self, name: &ImapMailbox<'_>) -> Result<(String, Mailbox), Failure> {
        let name = mailbox_name(name, self.utf8)?;
        let mailbox = Mailbox::of(self.user(), &name).map_err(|e| e.to_string())?;
        Ok((name, mailbox))
    }

    fn existing(&self, name: &ImapMailbox<'_>) -> Result<(String, Mailbox), Failure> {
        let (name, mailbox) = self.mailbox(name)?;
        if !mailbox.exists(&self.config.store, &self.head()?)? {
            return Err(format!("[TRYCREATE] no mailbox {name:?}; CREATE it first"));
        }
        Ok((name, mailbox))
    }

    /// Runs `change` in a transaction and commits it, retrying when the branch moved.
    fn write<T>(
        &self,
        message: &str,
        change: impl Fn(&Store, &mut kith_store::Transaction) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let store = &self.config.store;
        for attempt in 0.. {
            let mut tx = store.transaction(&self.config.branch)?;
            let value = change(store, &mut tx)?;
            match tx.commit(&self.config.author, message) {
                Ok(_) => return Ok(value),
                Err(kith_store::Error::BranchMoved { .. }) if attempt < 20 => continue,
                Err(e) => return Err(e.into()),
            }
        }
        unreachable!("the loop returns")
    }

    /// SELECT or EXAMINE with their CONDSTORE or QRESYNC parameters (RFC 7162).
    fn select_with(
        &mut self,
        tag: &Tag<'static>,
        name: &ImapMailbox<'_>,
        read_only: bool,
        parameters: Vec<SelectParameter>,
    ) -> Result<Option<(Option<Code<'static>>, String)>, Failure> {
        let mut resync = None;
        for parameter in parameters {
            match parameter {
                SelectParameter::CondStore => self.condstore = true,
                SelectParameter::QResync {
                    uid_validity,
                    mod_sequence_value,
                    known_uids,
                    ..
                } => {
                    resync = Some(Resync {
                        validity: uid_validity.get(),
                        modseq: mod_sequence_value.get(),
                        known: known_uids,
                    })
                }
            }
        }
        if resync.is_some() && !self.qresync {
            self.bad(
                Some(tag.clone()),
                "ENABLE QRESYNC before SELECT (QRESYNC ...)",
            );
            return Ok(None);
        }
        let answer = self.select(name, read_only)?;
        if let Some(resync) = resync {
            self.resync(&resync)?;
        }
        Ok(answer)
    }

    /// Tells a QRESYNC client what changed since it last looked: the UIDs that went
    /// (VANISHED (EARLIER)), then the flags changed after its mod-sequence.
    fn resync(&mut self, resync: &Resync) -> Result<(), Failure> {
        if resync.validity != self.selected().validity {
            return Ok(());
        }
        let everything = SequenceSet::try_from("1:*").expect("a set");
        let known = resync.known.as_ref().unwrap_or(&everything);
        self.send_vanished(known, resync.modseq)?;
        let largest = self.largest_uid();
        let changed: Vec<Data<'static>> = (self.selected().entries.iter().enumerate())
            .filter(|(_, e)| e.modseq > resync.modseq && search::in_set(known, e.uid, largest))
            .map(|(i, e)| fetch_flags(i, e, true, true))
            .collect();
        for data in changed {
            self.send(Response::Data(data));
        }
        Ok(())
    }

    /// The largest UID the selected mailbox has had.
    fn largest_uid(&self) -> u32 {
        let selected = self.selected();
        let last = selected.entries.last().map_or(0, |e| e.uid);
        last.max(selected.uidnext.saturating_sub(1))
    }

    /// Sends `VANISHED (EARLIER)` for the UIDs of `set` that are gone and were expunged
    /// after `modseq` (or whose tombstone was dropped).
    fn send_vanished(&mut self, set: &SequenceSet, modseq: u64) -> Result<(), Failure> {
        let selected = self.selected();
        let root = self.head()?;
        let tombstones = selected.mailbox.tombstones(&self.config.store, &root)?;
        let largest = self.largest_uid();
        let present: BTreeSet<u32> = selected.entries.iter().map(|e| e.uid).collect();
        let gone: Vec<u32> = (1..=largest)
            .filter(|uid| !present.contains(uid) && search::in_set(set, *uid, largest))
            .filter(|uid| tombstones.get(uid).is_none_or(|&m| m > modseq))
            .collect();
        if !gone.is_empty() {
            self.send(Response::Data(vanished(&gone, true)));
        }
        Ok(())
    }

    fn select(
        &mut self,
        name: &ImapMailbox<'_>,
        read_only: bool,
    ) -> Result<Option<(Option<Code<'static>>, String)>, Failure> {
        if self.selected.take().is_some() {
            self.untagged_ok(Code::Closed, "the mailbox selected before is closed");
        }
        let (_, mailbox) = self.existing(name)?;
        self.assign_uids(&mailbox)?;
        let root = self.head()?;
        let (validity, uidnext) = mailbox.uids(&self.config.store, &root)?;
        let entries = entries(&self.config.store, &root, &mailbox)?;
        let count = entries.len() as u32;
        self.send(Response::Data(Data::Flags(system_flags())));
        self.send(Response::Data(Data::Exists(count)));
        self.send(Response::Data(Data::Recent(0)));
        let mut perm: Vec<FlagPerm<'_>> = system_flags().into_iter().map(FlagPerm::Flag).collect();
        perm.push(FlagPerm::Asterisk);
        self.untagged_ok(Code::PermanentFlags(perm), "flags kept");
        self.untagged_ok(
            Code::uidvalidity(validity.max(1)).expect("nonzero"),
            "UIDs valid",
        );
        self.untagged_ok(Code::uidnext(uidnext.max(1)).expect("nonzero"), "next UID");
        let highest = mailbox.highest_modseq(&self.config.store, &root)?;
        self.untagged_ok(Code::HighestModSeq(nonzero64(highest)), "highest");
        if let Some(first) = entries.iter().position(|e| !e.flags.contains("\\Seen")) {
            self.untagged_ok(
                Code::unseen(first as u32 + 1).expect("nonzero"),
                "first unseen",
            );
        }
        self.selected = Some(Selected {
            mailbox,
            read_only,
            validity,
            uidnext,
            entries,
            seen: Some(root),
        });
        let code = if read_only {
            Code::ReadOnly
        } else {
            Code::ReadWrite
        };
        Ok(Some((Some(code), "selected".into())))
    }

    /// Gives UIDs to messages waiting under `.new/` (this replica serves the mailbox).
    fn assign_uids(&self, mailbox: &Mailbox) -> Result<(), Error> {
        let root = self.head()?;
        let new = format!("{}/{}", mailbox.path, mailbox::NEW);
        if self.config.store.find(&root, &new)?.is_none() {
            return Ok(());
        }
        loop {
            let given = self.write("mail: give UIDs", |store, tx| {
                mailbox.assign_some_uids(store, tx, UID_BATCH)
            })?;
            if given.len() < UID_BATCH {
                return Ok(());
            }
        }
    }

    fn create(
        &mut self,
        name: &ImapMailbox<'_>,
    ) -> Result<Option<(Option<Code<'static>>, String)>, Failure> {
        let (name, mailbox) = self.mailbox(name)?;
        if mailbox.exists(&self.config.store, &self.head()?)? {
            return Err(format!("{name:?} already exists"));
        }
        let validity = (kith_store::now_millis() / 1000) as u32;
        self.write(&format!("mail: create {name}"), |_, tx| {
            mailbox.create(tx, validity)
        })?;
        Ok(Some((None, "CREATE done".into())))
    }

    fn delete(
        &mut self,
        name: &ImapMailbox<'_>,
    ) -> Result<Option<(Option<Code<'static>>, String)>, Failure> {
        let (name, mailbox) = self.existing(name)?;
        if name == "INBOX" {
            return Err("INBOX cannot be deleted".into());
        }
        self.write(&format!("mail: delete {name}"), |_, tx| {
            for file in [
                mailbox::UIDVALIDITY,
                mailbox::UIDNEXT,
                mailbox::MODSEQ,
                mailbox::CUR,
                mailbox::NEW,
                mailbox::VANISHED,
            ] {
                tx.remove(&format!("{}/{file}", mailbox.path))?;
            }
            Ok(())
        })?;
        Ok(Some((None, "DELETE done".into())))
    }

    fn rename(
        &mut self,
        from: &ImapMailbox<'_>,
        to: &ImapMailbox<'_>,
    ) -> Result<Option<(Option<Code<'static>>, String)>, Failure> {
        let (old, source) = self.existing(from)?;
        let (new, target) = self.mailbox(to)?;
        if old == "INBOX" {
            return Err("renaming INBOX is not supported; MOVE its messages instead".into());
        }
        let root = self.head()?;
        if self
            .config
            .store
            .find(&root, &target.path)
            .map_err(Error::from)?
            .is_some()
        {
            return Err(format!("{new:?} already exists"));
        }
        let entry = self
            .config
            .store
            .find(&root, &source.path)
            .map_err(Error::from)?;
        self.write(&format!("mail: rename {old} to {new}"), |_, tx| {
            tx.set(&target.path, entry)?;
            tx.remove(&source.path)?;
            Ok(())
        })?;
        Ok(Some((None, "RENAME done".into())))
    }

    fn subscriptions_path(&self) -> String {
        format!("/mail/{}/.subscriptions", self.user())
    }

    fn subscriptions(&self) -> Result<BTreeSet<String>, Error> {
        let bytes = self
            .config
            .store
            .get(&self.head()?, &self.subscriptions_path())?;
        Ok(bytes
            .map(|b| {
                String::from_utf8_lossy(&b)
                    .lines()
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default())
    }

    fn subscribe(
        &mut self,
        name: &ImapMailbox<'_>,
        on: bool,
    ) -> Result<Option<(Option<Code<'static>>, String)>, Failure> {
        let (name, _) = self.mailbox(name)?;
        let path = self.subscriptions_path();
        self.write("mail: subscriptions", |_, tx| {
            let current = tx.get(&path)?.unwrap_or_default();
            let mut set: BTreeSet<String> = String::from_utf8_lossy(&current)
                .lines()
                .map(str::to_string)
                .collect();
            if on {
                set.insert(name.clone());
            } else {
                set.remove(&name);
            }
            let text: String = set.iter().map(|s| format!("{s}\n")).collect();
            tx.put(&path, text.as_bytes())?;
            Ok(())
        })?;
        Ok(Some((None, "done".into())))
    }

    fn list(
        &mut self,
        reference: &ImapMailbox<'_>,
        pattern: &ListMailbox<'_>,
        lsub: bool,
    ) -> Result<Option<(Option<Code<'static>>, String)>, Failure> {
        let pattern = match pattern {
            ListMailbox::Token(t) => String::from_utf8_lossy(t.as_ref()).into_owned(),
            ListMailbox::String(s) => String::from_utf8_lossy(s.as_ref()).into_owned(),
        };
        let reference = match reference {
            ImapMailbox::Inbox => "INBOX".to_string(),
            ImapMailbox::Other(o) => String::from_utf8_lossy(o.as_ref()).into_owned(),
        };
        if pattern.is_empty() && !lsub {
            self.send_raw(b"* LIST (\\Noselect) \"/\" \"\"\r\n");
            return Ok(Some((None, "LIST done".into())));
        }
        let list = ExtendedList {
            reference,
            patterns: vec![pattern],
            ..ExtendedList::default()
        };
        self.list_matching(&list, lsub)
    }

    /// Sends the LIST (or LSUB) responses for the mailboxes `list` selects, each with
    /// its children, special use and subscription, CHILDINFO and STATUS as asked.
    fn list_matching(
        &mut self,
        list: &ExtendedList,
        lsub: bool,
    ) -> Result<Option<(Option<Code<'static>>, String)>, Failure> {
        let root = self.head()?;
        let names = mailbox::mailboxes(&self.config.store, &root, self.user())?;
        let subscribed = self.subscriptions()?;
        let patterns: Vec<String> = (list.patterns.iter())
            .filter(|p| !p.is_empty())
            .map(|p| format!("{}{p}", list.reference))
            .collect();
        for name in &names {
            let shown = client_name(name, self.utf8);
            let matched = patterns.iter().any(|p| wildcard(p, &shown));
            let is_subscribed = subscribed.contains(name);
            let special = SPECIAL_USE.iter().find(|(n, _)| n == name).map(|(_, u)| *u);
            let selected = (!list.special_use || special.is_some())
                && (!list.subscribed || is_subscribed)
                && (!lsub || is_subscribed || name == "INBOX");
            let below = format!("{name}{DELIMITER}");
            let childinfo = list.recursive_match
                && (names.iter()).any(|n| n.starts_with(&below) && subscribed.contains(n));
            if !matched || !(selected || childinfo) {
                continue;
            }
            let children = names.iter().any(|n| n.starts_with(&below));
            let mut items = vec![attribute(if children {
                "HasChildren"
            } else {
                "HasNoChildren"
            })];
            if let Some(use_) = special {
                items.push(attribute(use_));
            }
            if is_subscribed && (list.subscribed || list.return_subscribed) {
                items.push(attribute("Subscribed"));
            }
            let (mailbox, delimiter) = (
                to_imap_mailbox(&shown),
                Some(DELIMITER.try_into().expect("valid")),
            );
            let data = match lsub {
                true => Data::Lsub {
                    items,
                    delimiter,
                    mailbox,
                },
                false => Data::List {
                    items,
                    delimiter,
                    mailbox,
                },
            };
            let mut line = ResponseCodec::default()
                .encode(&Response::Data(data))
                .dump();
            if childinfo {
                line.truncate(line.len() - 2);
                line.extend_from_slice(b" (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n");
            }
            self.send_raw(&line);
            if let (true, Some(items)) = (selected, &list.status) {
                let items: Vec<StatusDataItemName> =
                    items.iter().filter_map(|i| status_item(i)).collect();
                self.status(&to_imap_mailbox(&shown), &items)?;
            }
        }
        Ok(Some((None, "LIST done".into())))
    }

    fn status(
        &mut self,
        name: &ImapMailbox<'_>,
        items: &[StatusDataItemName],
    ) -> Result<Option<(Option<Code<'static>>, String)>, Failure> {
        let (_, mailbox) = self.existing(name)?;
        self.assign_uids(&mailbox)?;
        let root = self.head()?;
        let (validity, uidnext) = mailbox.uids(&self.config.store, &root)?;
        let list = entries(&self.config.store, &root, &mailbox)?;
        let highest = mailbox.highest_modseq(&self.config.store, &root)?;
        let count = |flag: &str, has: bool| {
            list.iter()
                .filter(|e| e.flags.contains(flag) == has)
                .count() as u32
        };
        let items: Vec<StatusDataItem> = items
            .iter()
            .filter_map(|item| {
                Some(match item {
                    StatusDataItemName::Messages => StatusDataItem::Messages(list.len() as u32),
                    StatusDataItemName::Recent => StatusDataItem::Recent(0),
                    StatusDataItemName::UidNext => StatusDataItem::UidNext(nonzero(uidnext)),
                    StatusDataItemName::UidValidity => {
                        StatusDataItem::UidValidity(nonzero(validity))
                    }
                    StatusDataItemName::Unseen => StatusDataItem::Unseen(count("\\Seen", false)),
                    StatusDataItemName::Deleted => {
                        StatusDataItem::Deleted(count("\\Deleted", true))
                    }
                    StatusDataItemName::HighestModSeq => StatusDataItem::HighestModSeq(highest),
                    _ => return None,
                })
            })
            .collect();
        self.send(Response::Data(Data::Status {
            mailbox: name.clone(),
            items: Cow::Owned(items),
        }));
        Ok(Some((None, "STATUS done".into())))
    }

    fn append(
        &mut self,
        name: &ImapMailbox<'_>,
        flags: &[Flag<'_>],
        date: Option<&DateTime>,
        bytes: &[u8],
    ) -> Result<Option<(Option<Code<'static>>, String)>, Failure> {
        let (name, mailbox) = self.existing(name)?;
        let date = date.map(|d| d.as_ref().format(DATE_FORMAT).to_string());
        let flags: BTreeSet<String> = flags.iter().map(|f| f.to_string()).collect();
        let store = &self.config.store;
        let blob = store.write_blob(bytes).map_err(Error::from)?;
        let root = self.head()?;
        let (validity, _) = mailbox.uids(store, &root)?;
        let uid = self.write(&format!("mail: append to {name}"), |store, tx| {
            let uid = mailbox.put_with_uid(store, tx, blob, &flags)?;
            if let Some(date) = &date {
                mailbox.set_date(tx, uid, date)?;
            }
            Ok(uid)
        })?;
        let code = Code::AppendUid {
            uid_validity: nonzero(validity),
            uid: nonzero(uid),
        };
        Ok(Some((Some(code), "APPEND done".into())))
    }

    // ----- The selected mailbox -----

    fn selected(&self) -> &Selected {
        self.selected.as_ref().expect("checked before running")
    }

    /// The indexes (sequence number - 1) a set names.
    fn indexes(&self, set: &SequenceSet, uid: bool) -> Vec<usize> {
        let entries = &self.selected().entries;
        if uid {
            let largest = entries.last().map_or(0, |e| e.uid);
            entries
                .iter()
                .enumerate()
                .filter(|(_, e)| search::in_set(set, e.uid, largest))
                .map(|(i, _)| i)
                .collect()
        } else {
            search::expand(set, entries.len() as u32)
                .into_iter()
                .map(|n| n as usize - 1)
                .collect()
        }
    }

    /// Brings the snapshot up to the branch head and reports the differences.
    fn refresh(&mut self, expunges: bool) {
        let Some(mailbox) = self.selected.as_ref().map(|s| s.mailbox.clone()) else {
            return;
        };
        let Ok(root) = self.head() else { return };
        if self.selected.as_ref().and_then(|s| s.seen) == Some(root) {
            return;
        }
        if let Err(e) = self.assign_uids(&mailbox) {
            tracing::warn!("imap: giving UIDs in {}: {e}", mailbox.path);
        }
        let Ok(root) = self.head() else { return };
        let Ok(current) = entries(&self.config.store, &root, &mailbox) else {
            return;
        };
        let uidnext = mailbox
            .uids(&self.config.store, &root)
            .map_or(0, |(_, next)| next);
        let mut responses = Vec::new();
        let condstore = self.condstore;
        let selected = self.selected.as_mut().expect("checked above");
        let deferred = !expunges
            && selected
                .entries
                .iter()
                .any(|e| current.binary_search_by_key(&e.uid, |c| c.uid).is_err());
        selected.seen = (!deferred).then_some(root);
        if expunges {
            let mut gone = Vec::new();
            for i in (0..selected.entries.len()).rev() {
                let uid = selected.entries[i].uid;
                if current.binary_search_by_key(&uid, |e| e.uid).is_err() {
                    selected.entries.remove(i);
                    gone.push(uid);
                    if !self.qresync {
                        responses.push(Data::Expunge(nonzero(i as u32 + 1)));
                    }
                }
            }
            if self.qresync && !gone.is_empty() {
                gone.reverse();
                responses.push(vanished(&gone, false));
            }
        }
        for (i, entry) in selected.entries.iter_mut().enumerate() {
            if let Ok(j) = current.binary_search_by_key(&entry.uid, |e| e.uid)
                && (current[j].flags != entry.flags || current[j].modseq != entry.modseq)
            {
                let flags_changed = current[j].flags != entry.flags;
                entry.flags = current[j].flags.clone();
                entry.modseq = current[j].modseq;
                if flags_changed || condstore {
                    responses.push(fetch_flags(i, entry, true, condstore));
                }
            }
        }
        let last = selected.entries.last().map_or(0, |e| e.uid);
        let before = selected.entries.len();
        selected
            .entries
            .extend(current.into_iter().filter(|e| e.uid > last));
        if selected.entries.len() != before {
            responses.push(Data::Exists(selected.entries.len() as u32));
        }
        selected.uidnext = selected.uidnext.max(uidnext);
        for data in responses {
            self.send(Response::Data(data));
        }
    }

    fn fetch(
        &mut self,
        set: &SequenceSet,
        items: MacroOrMessageDataItemNames<'static>,
        uid: bool,
        changed_since: Option<u64>,
        sink: &mut dyn Write,
    ) -> Result<Option<(Option<Code<'static>>, String)>, Failure> {
        let mut names = match items {
            MacroOrMessageDataItemNames::Macro(m) => macro_items(m),
            MacroOrMessageDataItemNames::MessageDataItemNames(names) => names,
        };
        if uid && !names.contains(&MessageDataItemName::Uid) {
            names.insert(0, MessageDataItemName::Uid);
        }
        if changed_since.is_some() && !names.contains(&MessageDataItemName::ModSeq) {
            names.push(MessageDataItemName::ModSeq);
        }
        self.condstore |= names.contains(&MessageDataItemName::ModSeq);
        let marks_seen = !self.selected().read_only
            && names.iter().any(|n| {
                matches!(
                    n,
                    MessageDataItemName::BodyExt { peek: false, .. }
                        | MessageDataItemName::Rfc822
                        | MessageDataItemName::Rfc822Text
                )
            });
        let since = changed_since.unwrap_or(0);
        let indexes: Vec<usize> = self
            .indexes(set, uid)
            .into_iter()
            .filter(|&i| self.selected().entries[i].modseq > since)
            .collect();
        if marks_seen {
            self.set_seen(&indexes)?;
        }
        let need = need(&names);
        for i in indexes {
            let raw = self.read(self.selected().entries[i].blob, need)?;
            let items = self.fetch_items(&self.selected().entries[i], &names, &raw)?;
            if let Ok(items) = Vec1::try_from(items) {
                self.send(Response::Data(Data::Fetch {
                    seq: nonzero(i as u32 + 1),
                    items,
                }));
            }
            if !self.spill(sink, CHUNK) {
                return Ok(None);
            }
        }
        Ok(Some((None, "FETCH done".into())))
    }

    fn set_seen(&mut self, indexes: &[usize]) -> Result<(), Failure> {
        let changes: Vec<(usize, BTreeSet<String>)> = indexes
            .iter()
            .filter(|&&i| !self.selected().entries[i].flags.contains("\\Seen"))
            .map(|&i| {
                let mut flags = self.selected().entries[i].flags.clone();
                flags.insert("\\Seen".into());
                (i, flags)
            })
            .collect();
        self.apply_flags(changes, "mail: mark seen")
    }

    /// Writes new flags for messages of the selected mailbox, as one commit.
    fn apply_flags(
        &mut self,
        changes: Vec<(usize, BTreeSet<String>)>,
        message: &str,
    ) -> Result<(), Failure> {
        if changes.is_empty() {
            return Ok(());
        }
        let selected = self.selected();
        let mailbox = selected.mailbox.clone();
        let uids: Vec<u32> = changes
            .iter()
            .map(|(i, _)| selected.entries[*i].uid)
            .collect();
        let modseq = self.write(message, |store, tx| {
            let root = tx.base_tree();
            let modseq = mailbox.bump_modseq(store, tx)?;
            for ((_, flags), uid) in changes.iter().zip(&uids) {
                let key = Key::Uid(*uid);
                if store
                    .find(&root, &key.path(&mailbox.path, "eml"))?
                    .is_some()
                {
                    mailbox.set_flags(tx, &key, flags)?;
                    mailbox.set_modseq(tx, *uid, modseq)?;
                }
            }
            Ok(modseq)
        })?;
        let selected = self.selected.as_mut().expect("selected");
        for (i, flags) in changes {
            selected.entries[i].flags = flags;
            selected.entries[i].modseq = modseq;
        }
        Ok(())
    }

    /// A message's INTERNALDATE: the one its APPEND gave, else one from its headers.
    fn internal_date(&self, entry: &Entry, raw: &[u8]) -> Result<DateTime, Failure> {
        let kept = self.kept_date(entry)?;
        Ok(kept
            .and_then(|d| ChronoDateTime::parse_from_str(&d, DATE_FORMAT).ok())
            .and_then(|d| DateTime::try_from(d).ok())
            .unwrap_or_else(|| internal_date(raw, self.selected().validity)))
    }

    /// The INTERNALDATE an APPEND gave `entry`, as kept in its `.date` file.
    fn kept_date(&self, entry: &Entry) -> Result<Option<String>, Failure> {
        let Some(hash) = entry.date else {
            return Ok(None);
        };
        let bytes = self.config.store.blob(&hash).map_err(Error::from)?;
        Ok(Some(String::from_utf8_lossy(&bytes).trim().to_string()))
    }

    /// What a FETCH needs of a message: its header comes from the cache when it can.
    fn read(&mut self, blob: Hash, need: Need) -> Result<Raw, Failure> {
        if need == Need::Nothing {
            return Ok(Raw::Read(Vec::new()));
        }
        if need == Need::Header
            && let Some(header) = self.headers.get(&blob)
        {
            return Ok(Raw::Header(Arc::clone(header)));
        }
        let mut raw = self.config.store.blob(&blob).map_err(Error::from)?;
        if need == Need::Whole {
            return Ok(Raw::Read(raw));
        }
        raw.truncate(header_end(&raw));
        let header: Arc<[u8]> = raw.into();
        let size = header.len() + 64;
        if self.headers_size + size > HEADER_CACHE {
            self.headers.clear();
            self.headers_size = 0;
        }
        self.headers_size += size;
        self.headers.insert(blob, Arc::clone(&header));
        Ok(Raw::Header(header))
    }

    fn fetch_items(
        &self,
        entry: &Entry,
        names: &[MessageDataItemName<'static>],
        raw: &[u8],
    ) -> Result<Vec<MessageDataItem<'static>>, Failure> {
        let needs_parts = names.iter().any(|n| {
            matches!(
                n,
                MessageDataItemName::Body | MessageDataItemName::BodyStructure
            ) || matches!(n, MessageDataItemName::BodyExt { section: Some(s), .. }
                if !mime::is_top_level(s))
        });
        let parsed = if needs_parts {
            Some(Parsed::new(raw))
        } else if names.contains(&MessageDataItemName::Envelope) {
            Some(Parsed::new(&raw[..header_end(raw)]))
        } else {
            None
        };
        let mut items = Vec::new();
        for name in names {
            let item = match name {
                MessageDataItemName::Uid => MessageDataItem::Uid(nonzero(entry.uid)),
                MessageDataItemName::ModSeq => MessageDataItem::ModSeq(nonzero64(entry.modseq)),
                MessageDataItemName::Flags => MessageDataItem::Flags(flag_list(&entry.flags)),
                MessageDataItemName::Rfc822Size => MessageDataItem::Rfc822Size(raw.len() as u32),
                MessageDataItemName::InternalDate => {
                    MessageDataItem::InternalDate(self.internal_date(entry, raw)?)
                }
                MessageDataItemName::Envelope => {
                    MessageDataItem::Envelope(parsed.as_ref().expect("parsed").envelope.clone())
                }
                MessageDataItemName::Body => {
                    MessageDataItem::Body(parsed.as_ref().expect("parsed").structure(false))
                }
                MessageDataItemName::BodyStructure => {
                    MessageDataItem::BodyStructure(parsed.as_ref().expect("parsed").structure(true))
                }
                MessageDataItemName::Rfc822 => MessageDataItem::Rfc822(literal(raw.to_vec())),
                MessageDataItemName::Rfc822Header => {
                    MessageDataItem::Rfc822Header(literal(raw[..header_end(raw)].to_vec()))
                }
                MessageDataItemName::Rfc822Text => {
                    MessageDataItem::Rfc822Text(literal(raw[header_end(raw)..].to_vec()))
                }
                MessageDataItemName::BodyExt {
                    section, partial, ..
                } => {
                    let bytes = match (section, &parsed) {
                        (None, _) => Some(raw.to_vec()),
                        (Some(s), _) if mime::is_top_level(s) => mime::top_level(raw, s),
                        (Some(s), Some(p)) => p.section(Some(s)),
                        (Some(_), None) => None,
                    };
                    let bytes = bytes.unwrap_or_default();
                    let (origin, bytes) = match partial {
                        Some((start, length)) => {
                            let start = (*start as usize).min(bytes.len());
                            let end = (start + length.get() as usize).min(bytes.len());
                            (Some(start as u32), bytes[start..end].to_vec())
                        }
                        None => (None, bytes),
                    };
                    MessageDataItem::BodyExt {
                        section: section.clone(),
                        origin,
                        data: literal(bytes),
                    }
                }
                _ => continue,
            };
            items.push(item);
        }
        Ok(items)
    }

    fn store(
        &mut self,
        set: &SequenceSet,
        kind: StoreType,
        response: StoreResponse,
        flags: &[Flag<'_>],
        uid: bool,
        unchanged_since: Option<u64>,
    ) -> Result<Option<(Option<Code<'static>>, String)>, Failure> {
        if self.selected().read_only {
            return Err("the mailbox is read-only (EXAMINE); SELECT it to change flags".into());
        }
        self.condstore |= unchanged_since.is_some();
        let given: BTreeSet<String> = flags.iter().map(|f| f.to_string()).collect();
        let (indexes, modified): (Vec<usize>, Vec<usize>) = self
            .indexes(set, uid)
            .into_iter()
            .partition(|&i| unchanged_since.is_none_or(|m| self.selected().entries[i].modseq <= m));
        let changes: Vec<(usize, BTreeSet<String>)> = indexes
            .iter()
            .map(|&i| {
                let old = &self.selected().entries[i].flags;
                let new: BTreeSet<String> = match kind {
                    StoreType::Replace => given.clone(),
                    StoreType::Add => old.union(&given).cloned().collect(),
                    StoreType::Remove => old.difference(&given).cloned().collect(),
                };
                (i, new)
            })
            .filter(|(i, new)| &self.selected().entries[*i].flags != new)
            .collect();
        self.apply_flags(changes, "mail: store flags")?;
        if response == StoreResponse::Answer {
            for i in indexes {
                let entry = self.selected().entries[i].clone();
                let data = fetch_flags(i, &entry, uid || self.condstore, self.condstore);
                self.send(Response::Data(data));
            }
        }
        let entries = &self.selected().entries;
        let numbers: Vec<u32> = modified
            .iter()
            .map(|&i| if uid { entries[i].uid } else { i as u32 + 1 })
            .collect();
        let code = (!numbers.is_empty()).then(|| {
            let set = SequenceSet::try_from(compress(&numbers).as_str()).expect("a set");
            Code::Modified(set)
        });
        Ok(Some((code, "STORE done".into())))
    }

    fn search(
        &mut self,
        criteria: Vec1<SearchKey<'static>>,
        uid: bool,
        esearch: Option<Vec<String>>,
    ) -> Result<Option<(Option<Code<'static>>, String)>, Failure> {
        let key = SearchKey::And(criteria);
        let selected = self.selected();
        let last = (
            selected.entries.len() as u32,
            selected.entries.last().map_or(0, |e| e.uid),
        );
        let mut found = Vec::new();
        let mut highest = 0;
        for (i, entry) in selected.entries.iter().enumerate() {
            let read = || self.config.store.blob(&entry.blob).unwrap_or_default();
            let mut cache = None;
            let internal = |raw: &[u8]| {
                self.internal_date(entry, raw)
                    .unwrap_or_else(|_| internal_date(raw, selected.validity))
                    .as_ref()
                    .date_naive()
            };
            let candidate = Candidate {
                seq: i as u32 + 1,
                uid: entry.uid,
                last,
                flags: &entry.flags,
                modseq: entry.modseq,
                bytes: &read,
                internal: &internal,
            };
            if search::matches(&key, &candidate, &mut cache) {
                found.push(if uid { entry.uid } else { i as u32 + 1 });
                highest = highest.max(entry.modseq);
            }
        }
        let highest = search::uses_modseq(&key).then(|| nonzero64(highest));
        match esearch {
            Some(options) => {
                let tag = self.last_tag();
                self.send_raw(esearch_line(&tag, uid, &options, &found).as_bytes());
            }
            None => self.send(Response::Data(Data::Search(
                found.into_iter().map(nonzero).collect(),
                highest,
            ))),
        }
        Ok(Some((None, "SEARCH done".into())))
    }

    fn last_tag(&self) -> String {
        self.input
            .decode_tag()
            .map(|t| t.inner().to_string())
            .unwrap_or_default()
    }

    fn copy(
        &mut self,
        set: &SequenceSet,
        target: &ImapMailbox<'_>,
        uid: bool,
        remove: bool,
    ) -> Result<Option<(Option<Code<'static>>, String)>, Failure> {
        if remove && self.selected().read_only {
            return Err("the mailbox is read-only (EXAMINE); SELECT it to move".into());
        }
        let (name, target) = self.existing(target)?;
        let indexes = self.indexes(set, uid);
        if indexes.is_empty() {
            return Ok(Some((None, "nothing to copy".into())));
        }
        let source = self.selected().mailbox.clone();
        let moved: Vec<Entry> = indexes
            .iter()
            .map(|&i| self.selected().entries[i].clone())
            .collect();
        let verb = if remove { "move" } else { "copy" };
        let dates = (moved.iter())
            .map(|entry| self.kept_date(entry))
            .collect::<Result<Vec<_>, _>>()?;
        let given = self.write(&format!("mail: {verb} to {name}"), |store, tx| {
            let mut given = Vec::new();
            for (entry, date) in moved.iter().zip(&dates) {
                let uid = target.put_with_uid(store, tx, entry.blob, &entry.flags)?;
                if let Some(date) = date {
                    target.set_date(tx, uid, date)?;
                }
                given.push(uid);
            }
            if remove {
                let uids: Vec<u32> = moved.iter().map(|e| e.uid).collect();
                source.expunge_uids(store, tx, &uids)?;
            }
            Ok(given)
        })?;
        let (validity, _) = target.uids(&self.config.store, &self.head()?)?;
        let code = Code::CopyUid {
            uid_validity: nonzero(validity),
            source: uid_set(moved.iter().map(|e| e.uid)),
            destination: uid_set(given.into_iter()),
        };
        if !remove {
            return Ok(Some((Some(code), "COPY done".into())));
        }
        self.untagged_ok(code, "moved");
        self.forget(&indexes);
        Ok(Some((None, "MOVE done".into())))
    }

    /// Drops messages from the snapshot, announcing each EXPUNGE (or them all in one
    /// VANISHED once QRESYNC is on).
    fn forget(&mut self, indexes: &[usize]) {
        let mut sorted = indexes.to_vec();
        sorted.sort_unstable();
        let mut gone = Vec::new();
        for &i in sorted.iter().rev() {
            let entry = self.selected.as_mut().expect("selected").entries.remove(i);
            gone.push(entry.uid);
            if !self.qresync {
                self.send(Response::Data(Data::Expunge(nonzero(i as u32 + 1))));
            }
        }
        if self.qresync && !gone.is_empty() {
            gone.sort_unstable();
            self.send(Response::Data(vanished(&gone, false)));
        }
    }

    fn expunge(
        &mut self,
        only: Option<&SequenceSet>,
        silent: bool,
    ) -> Result<Option<(Option<Code<'static>>, String)>, Failure> {
        if self.selected().read_only {
            return Err("the mailbox is read-only (EXAMINE)".into());
        }
        let indexes: Vec<usize> = match only {
            Some(set) => self.indexes(set, true),
            None => (0..self.selected().entries.len()).collect(),
        }
        .into_iter()
        .filter(|&i| self.selected().entries[i].flags.contains("\\Deleted"))
        .collect();
        let mailbox = self.selected().mailbox.clone();
        let uids: Vec<u32> = indexes
            .iter()
            .map(|&i| self.selected().entries[i].uid)
            .collect();
        if !uids.is_empty() {
            self.write("mail: expunge", |store, tx| {
                mailbox.expunge_uids(store, tx, &uids)
            })?;
        }
        if silent {
            let mut sorted = indexes;
            sorted.sort_unstable();
            for &i in sorted.iter().rev() {
                self.selected.as_mut().expect("selected").entries.remove(i);
            }
        } else {
            self.forget(&indexes);
        }
        Ok(Some((None, "EXPUNGE done".into())))
    }

    // ----- Output -----

    fn send(&mut self, response: Response<'_>) {
        let bytes = ResponseCodec::default().encode(&response).dump();
        self.out.extend_from_slice(&bytes);
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    fn tagged_ok(&mut self, tag: Tag<'static>, code: Option<Code<'static>>, text: &str) {
        self.send(Response::Status(
            Status::ok(Some(tag), code, text).expect("valid"),
        ));
    }

    fn untagged_ok(&mut self, code: Code<'static>, text: &str) {
        self.send(Response::Status(
            Status::ok(None, Some(code), text).expect("valid"),
        ));
    }

    fn bad(&mut self, tag: Option<Tag<'static>>, text: &str) {
        self.send(Response::Status(
            Status::bad(tag, None, text).expect("valid"),
        ));
    }

    fn untagged_bad(&mut self, text: &str) {
        self.bad(None, text);
    }
}

/// What this server offers, before (`false`) and after login.
fn capabilities(logged_in: bool) -> Vec1<Capability<'static>> {
    let mut list = vec![
        Capability::Imap4Rev1,
        Capability::try_from("IMAP4rev2").expect("atom"),
        Capability::LiteralPlus,
        Capability::Idle,
        Capability::Namespace,
        Capability::Id,
        Capability::Enable,
        Capability::UidPlus,
        Capability::CondStore,
        Capability::QResync,
        Capability::Move,
        Capability::Unselect,
        Capability::try_from("SPECIAL-USE").expect("atom"),
        Capability::try_from("LIST-EXTENDED").expect("atom"),
        Capability::try_from("LIST-STATUS").expect("atom"),
        Capability::try_from("ESEARCH").expect("atom"),
        Capability::try_from("CHILDREN").expect("atom"),
    ];
    if !logged_in {
        list.push(Capability::Auth(AuthMechanism::Plain));
        list.push(Capability::SaslIr);
    }
    Vec1::try_from(list).expect("not empty")
}

fn system_flags() -> Vec<Flag<'static>> {
    vec![
        Flag::Answered,
        Flag::Flagged,
        Flag::Deleted,
        Flag::Seen,
        Flag::Draft,
    ]
}

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n.max(1)).expect("at least 1")
}

fn nonzero64(n: u64) -> NonZeroU64 {
    NonZeroU64::new(n.max(1)).expect("at least 1")
}

fn attribute(name: &str) -> FlagNameAttribute<'static> {
    FlagNameAttribute::from(
        imap_codec::imap_types::core::Atom::try_from(name.to_string()).expect("atom"),
    )
}

fn flag_list(flags: &BTreeSet<String>) -> Vec<FlagFetch<'static>> {
    flags
        .iter()
        .filter_map(|f| Flag::try_from(f.as_str()).ok().map(IntoStatic::into_static))
        .map(FlagFetch::Flag)
        .collect()
}

fn fetch_flags(index: usize, entry: &Entry, with_uid: bool, modseq: bool) -> Data<'static> {
    let mut items = vec![MessageDataItem::Flags(flag_list(&entry.flags))];
    if with_uid {
        items.insert(0, MessageDataItem::Uid(nonzero(entry.uid)));
    }
    if modseq {
        items.push(MessageDataItem::ModSeq(nonzero64(entry.modseq)));
    }
    Data::Fetch {
        seq: nonzero(index as u32 + 1),
        items: Vec1::try_from(items).expect("not empty"),
    }
}

/// How much of each message the items need: the header alone serves ENVELOPE,
/// INTERNALDATE and the header sections.
fn need(names: &[MessageDataItemName<'_>]) -> Need {
    use MessageDataItemName as N;
    let each = |name: &N<'_>| match name {
        N::Uid | N::Flags | N::ModSeq => Need::Nothing,
        N::Envelope | N::InternalDate | N::Rfc822Header => Need::Header,
        N::BodyExt {
            section:
                Some(
                    Section::Header(None)
                    | Section::HeaderFields(None, _)
                    | Section::HeaderFieldsNot(None, _),
                ),
            ..
        } => Need::Header,
        _ => Need::Whole,
    };
    names.iter().map(each).max().unwrap_or(Need::Nothing)
}

/// `VANISHED [(EARLIER)] uids` (RFC 7162) for sorted UIDs.
fn vanished(uids: &[u32], earlier: bool) -> Data<'static> {
    Data::Vanished {
        earlier,
        known_uids: SequenceSet::try_from(compress(uids).as_str()).expect("a set"),
    }
}

fn literal(bytes: Vec<u8>) -> imap_codec::imap_types::core::NString<'static> {
    let bytes: Vec<u8> = if bytes.contains(&0) {
        bytes.into_iter().filter(|&b| b != 0).collect()
    } else {
        bytes
    };
    imap_codec::imap_types::core::NString(Some(
        imap_codec::imap_types::core::Literal::try_from(bytes)
            .expect("bytes without NUL are a literal")
            .into(),
    ))
}

fn uid_set(uids: impl Iterator<Item = u32>) -> UidSet {
    let list: Vec<UidElement> = uids.map(|u| UidElement::Single(nonzero(u))).collect();
    UidSet(Vec1::try_from(list).expect("not empty"))
}

fn macro_items(m: Macro) -> Vec<MessageDataItemName<'static>> {
    use MessageDataItemName as N;
    let mut items = vec![N::Flags, N::InternalDate, N::Rfc822Size];
    match m {
        Macro::Fast => {}
        Macro::All => items.push(N::Envelope),
        Macro::Full => items.extend([N::Envelope, N::Body]),
        _ => {}
    }
    items
}

/// The mailbox's messages with UIDs, in UID order.
fn entries(store: &Store, root: &Hash, mailbox: &Mailbox) -> Result<Vec<Entry>, Error> {
    let modseqs = mailbox.modseqs(store, root)?;
    Ok(mailbox
        .messages(store, root)?
        .into_iter()
        .filter_map(|m| match m.key {
            Key::Uid(uid) => Some(Entry {
                uid,
                blob: m.blob,
                flags: m.flags,
                modseq: modseqs.get(&uid).copied().unwrap_or(1),
                date: m.date,
            }),
            Key::New(_) => None,
        })
        .collect())
}

/// The store mailbox name (UTF-8) for an IMAP one, in UTF-8 or else modified UTF-7.
fn mailbox_name(name: &ImapMailbox<'_>, utf8: bool) -> Result<String, Failure> {
    let other = match name {
        ImapMailbox::Inbox => return Ok("INBOX".into()),
        ImapMailbox::Other(other) => std::str::from_utf8(other.as_ref())
            .map_err(|_| "a mailbox name must be UTF-8".to_string())?,
    };
    let name = if utf8 {
        other.to_string()
    } else {
        utf7::decode(other).ok_or_else(|| format!("{other:?} is not modified UTF-7"))?
    };
    Ok(match name.split_once(DELIMITER) {
        Some((first, rest)) if first.eq_ignore_ascii_case("INBOX") => {
            format!("INBOX{DELIMITER}{rest}")
        }
        _ => name.trim_end_matches(DELIMITER).to_string(),
    })
}

/// A store mailbox name as a client sees it: in UTF-8, or else in modified UTF-7.
fn client_name(name: &str, utf8: bool) -> String {
    if utf8 {
        name.to_string()
    } else {
        utf7::encode(name)
    }
}

/// The status item a LIST-STATUS option names.
fn status_item(name: &str) -> Option<StatusDataItemName> {
    Some(match name {
        "MESSAGES" => StatusDataItemName::Messages,
        "UIDNEXT" => StatusDataItemName::UidNext,
        "UIDVALIDITY" => StatusDataItemName::UidValidity,
        "UNSEEN" => StatusDataItemName::Unseen,
        "DELETED" => StatusDataItemName::Deleted,
        "HIGHESTMODSEQ" => StatusDataItemName::HighestModSeq,
        "RECENT" => StatusDataItemName::Recent,
        _ => return None,
    })
}

fn to_imap_mailbox(name: &str) -> ImapMailbox<'static> {
    ImapMailbox::try_from(name.to_string()).expect("a mailbox name")
}

/// Whether `name` matches a LIST pattern (`*` anything, `%` anything but `/`).
fn wildcard(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some((b'*', rest)) => (0..=n.len()).any(|i| go(rest, &n[i..])),
            Some((b'%', rest)) => (0..=n.len())
                .take_while(|&i| i == 0 || n[i - 1] != b'/')
                .any(|i| go(rest, &n[i..])),
            Some((c, rest)) => n
                .split_first()
                .is_some_and(|(d, n)| c.eq_ignore_ascii_case(d) && go(rest, n)),
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

/// When the message arrived: its first `Received:` date, else its `Date:`, else the
/// mailbox's creation (UIDVALIDITY is its creation time in seconds).
fn internal_date(raw: &[u8], validity: u32) -> DateTime {
    let parsed = mail_parser::MessageParser::default().parse_headers(raw);
    let seconds = parsed
        .as_ref()
        .and_then(|m| {
            m.received()
                .and_then(|r| r.date())
                .or_else(|| m.date().cloned())
        })
        .map(|d| {
            (
                d.to_timestamp(),
                d.tz_hour as i32 * 3600 + d.tz_minute as i32 * 60,
                d.tz_before_gmt,
            )
        })
        .unwrap_or((i64::from(validity), 0, false));
    let offset = if seconds.2 { -seconds.1 } else { seconds.1 };
    let zone = FixedOffset::east_opt(offset).unwrap_or(FixedOffset::east_opt(0).expect("UTC"));
    let when = ChronoDateTime::from_timestamp(seconds.0, 0)
        .unwrap_or_default()
        .with_timezone(&zone);
    DateTime::try_from(when).unwrap_or_else(|_| {
        DateTime::try_from(
            ChronoDateTime::from_timestamp(0, 0)
                .unwrap_or_default()
                .fixed_offset(),
        )
        .expect("the epoch is a valid date")
    })
}

/// `tag [UID] SEARCH RETURN (options) rest` as the command without `RETURN (...)` and
/// the options, for ESEARCH (RFC 4731), which `imap-codec` does not parse.
fn strip_search_return(bytes: &[u8]) -> Option<(Vec<String>, Vec<u8>)> {
    let text = std::str::from_utf8(bytes).ok()?;
    let upper = text.to_ascii_uppercase();
    let at = upper.find(" SEARCH RETURN (")?;
    let prefix = upper[..at].split(' ').count();
    if prefix > 2 || (prefix == 2 && !upper[..at].ends_with(" UID")) {
        return None;
    }
    let open = at + " SEARCH RETURN (".len();
    let close = open + text[open..].find(')')?;
    let options = upper[open..close]
        .split_whitespace()
        .map(str::to_string)
        .collect::<Vec<_>>();
    let options = if options.is_empty() {
        vec!["ALL".into()]
    } else {
        options
    };
    let rest = text[close + 1..].trim_start();
    let rest = if rest.trim().is_empty() {
        "ALL\r\n"
    } else {
        rest
    };
    Some((
        options,
        format!("{} {rest}", &text[..at + " SEARCH".len()]).into_bytes(),
    ))
}

/// The ESEARCH response (RFC 4731) for `found`.
fn esearch_line(tag: &str, uid: bool, options: &[String], found: &[u32]) -> String {
    let mut line = format!("* ESEARCH (TAG \"{tag}\")");
    if uid {
        line.push_str(" UID");
    }
    let asked = ["MIN", "MAX", "ALL", "COUNT"]
        .into_iter()
        .filter(|o| options.iter().any(|x| x == o));
    for option in asked {
        match option {
            "MIN" if !found.is_empty() => line.push_str(&format!(" MIN {}", found[0])),
            "MAX" if !found.is_empty() => {
                line.push_str(&format!(" MAX {}", found[found.len() - 1]))
            }
            "COUNT" => line.push_str(&format!(" COUNT {}", found.len())),
            "ALL" if !found.is_empty() => line.push_str(&format!(" ALL {}", compress(found))),
            _ => {}
        }
    }
    line.push_str("\r\n");
    line
}

/// A sorted list as a sequence set (`1:3,7`).
fn compress(numbers: &[u32]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < numbers.len() {
        let mut j = i;
        while j + 1 < numbers.len() && numbers[j + 1] == numbers[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            numbers[i].to_string()
        } else {
            format!("{}:{}", numbers[i], numbers[j])
        });
        i = j + 1;
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    struct One;
    impl Accounts for One {
        fn verify(&self, user: &str, password: &str) -> bool {
            user == "me" && password == "pw"
        }
    }

    fn session() -> Session {
        Session::new(config())
    }

    fn config() -> Config {
        let store = Store::memory();
        let inbox = Mailbox::of("me", "INBOX").unwrap();
        let mut tx = store.transaction("main").unwrap();
        inbox.create(&mut tx, 7).unwrap();
        for i in 1..=3 {
            let text = format!("From: a{i}@example.org\r\nSubject: s{i}\r\n\r\nbody {i}\r\n");
            inbox
                .add(&mut tx, text.as_bytes(), &BTreeSet::new())
                .unwrap();
            inbox.assign_uids(&store, &mut tx).unwrap();
        }
        tx.commit("test", "setup").unwrap();
        Config {
            store,
            branch: "main".into(),
            author: "test".into(),
            accounts: Arc::new(One),
        }
    }

    fn say(s: &mut Session, line: &str) -> String {
        let mut out = Vec::new();
        s.feed(line.as_bytes(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_session_reads_and_changes_a_mailbox() {
        let mut s = session();
        assert!(say(&mut s, "a LOGIN me wrong\r\n").starts_with("a NO"));
        assert!(say(&mut s, "a LOGIN me pw\r\n").contains("a OK"));
        let selected = say(&mut s, "b SELECT inbox\r\n");
        assert!(selected.contains("* 3 EXISTS") && selected.contains("[UIDVALIDITY 7]"));
        let fetched = say(
            &mut s,
            "c UID FETCH 2 (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n",
        );
        assert!(fetched.contains("Subject: s2"), "{fetched}");
        let stored = say(&mut s, "d STORE 1:2 +FLAGS (\\Deleted)\r\n");
        assert!(stored.contains("* 1 FETCH (FLAGS (\\Deleted))"), "{stored}");
        let found = say(&mut s, "e SEARCH DELETED FROM a2\r\n");
        assert!(found.contains("* SEARCH 2\r\n"), "{found}");
        let esearch = say(&mut s, "e2 UID SEARCH RETURN (COUNT MIN) UNDELETED\r\n");
        assert!(
            esearch.contains("* ESEARCH (TAG \"e2\") UID MIN 3 COUNT 1"),
            "{esearch}"
        );
        assert!(say(&mut s, "f APPEND INBOX {5}\r\n").starts_with("+ "));
        let appended = say(&mut s, "hello\r\n");
        assert!(appended.contains("[APPENDUID 7 4]"), "{appended}");
        let expunged = say(&mut s, "g EXPUNGE\r\n");
        assert!(
            expunged.starts_with("* 2 EXPUNGE\r\n* 1 EXPUNGE\r\n"),
            "{expunged}"
        );
        assert!(say(&mut s, "h LOGOUT\r\n").contains("* BYE"));
        assert!(s.is_closed());
    }

    #[test]
    fn authenticate_plain_with_and_without_an_initial_response() {
        let mut s = session();
        assert!(say(&mut s, "a AUTHENTICATE PLAIN\r\n").starts_with("+ "));
        // "\0me\0wrong", then "\0me\0pw" in base64.
        assert!(say(&mut s, "AG1lAHdyb25n\r\n").starts_with("a NO"));
        assert!(say(&mut s, "b AUTHENTICATE PLAIN AG1lAHB3\r\n").starts_with("b OK"));
        assert!(say(&mut s, "c SELECT INBOX\r\n").contains("c OK [READ-WRITE]"));
    }

    #[test]
    fn condstore_counts_flag_changes() {
        let mut s = session();
        say(&mut s, "a LOGIN me pw\r\n");
        assert!(say(&mut s, "b ENABLE CONDSTORE\r\n").contains("* ENABLED CONDSTORE"));
        let selected = say(&mut s, "c SELECT INBOX\r\n");
        assert!(selected.contains("[HIGHESTMODSEQ 4]"), "{selected}");
        let stored = say(&mut s, "d UID STORE 2 +FLAGS (\\Seen)\r\n");
        assert!(
            stored.contains("(UID 2 FLAGS (\\Seen) MODSEQ (5))"),
            "{stored}"
        );
        let changed = say(&mut s, "e UID FETCH 1:* (FLAGS) (CHANGEDSINCE 4)\r\n");
        assert!(
            changed.contains("UID 2") && !changed.contains("UID 1 "),
            "{changed}"
        );
        let refused = say(
            &mut s,
            "f UID STORE 1:2 (UNCHANGEDSINCE 4) +FLAGS (\\Flagged)\r\n",
        );
        assert!(refused.contains("f OK [MODIFIED 2]"), "{refused}");
        let found = say(&mut s, "g SEARCH MODSEQ 6\r\n");
        assert!(found.contains("* SEARCH 1 (MODSEQ 6)"), "{found}");
        let status = say(&mut s, "h STATUS INBOX (HIGHESTMODSEQ)\r\n");
        assert!(status.contains("HIGHESTMODSEQ 6"), "{status}");
    }

    #[test]
    fn qresync_tells_what_vanished_and_what_changed() {
        let mut s = session();
        say(&mut s, "a LOGIN me pw\r\n");
        assert!(say(&mut s, "b SELECT INBOX (QRESYNC (7 4))\r\n").starts_with("b BAD"));
        assert!(say(&mut s, "c ENABLE QRESYNC\r\n").contains("* ENABLED QRESYNC"));
        say(&mut s, "d SELECT INBOX\r\n");
        say(&mut s, "e STORE 1 +FLAGS (\\Deleted)\r\n");
        say(&mut s, "f UID STORE 3 +FLAGS (\\Flagged)\r\n");
        let expunged = say(&mut s, "g EXPUNGE\r\n");
        assert!(expunged.starts_with("* VANISHED 1\r\ng OK"), "{expunged}");
        let resync = say(&mut s, "h EXAMINE INBOX (QRESYNC (7 4 1:3))\r\n");
        assert!(resync.starts_with("* OK [CLOSED]"), "{resync}");
        assert!(resync.contains("[HIGHESTMODSEQ 7]"), "{resync}");
        assert!(
            resync.contains(
                "* VANISHED (EARLIER) 1\r\n* 2 FETCH (UID 3 FLAGS (\\Flagged) MODSEQ (6))\r\nh OK"
            ),
            "{resync}"
        );
        let fetched = say(
            &mut s,
            "i UID FETCH 1:* (FLAGS) (CHANGEDSINCE 4 VANISHED)\r\n",
        );
        assert!(
            fetched.starts_with("* VANISHED (EARLIER) 1\r\n* 2 FETCH (UID 3 "),
            "{fetched}"
        );
        let stale = say(&mut s, "j SELECT INBOX (QRESYNC (8 4))\r\n");
        assert!(
            !stale.contains("VANISHED") && stale.contains("j OK"),
            "{stale}"
        );
        let refused = say(&mut s, "k UID FETCH 1:* (FLAGS) (VANISHED)\r\n");
        assert!(refused.starts_with("k BAD"), "{refused}");
    }

    #[test]
    fn headers_come_the_same_from_the_cache() {
        let mut s = session();
        say(&mut s, "a LOGIN me pw\r\n");
        say(&mut s, "b SELECT INBOX\r\n");
        let ask = "c UID FETCH 1:* (BODY.PEEK[HEADER] ENVELOPE INTERNALDATE)\r\n";
        let first = say(&mut s, ask);
        assert!(
            first.contains("Subject: s3\r\n\r\n") && first.contains("\"s3\""),
            "{first}"
        );
        assert_eq!(say(&mut s, ask), first);
        let whole = say(&mut s, "d UID FETCH 1 (BODY.PEEK[HEADER] RFC822.SIZE)\r\n");
        assert!(whole.contains("RFC822.SIZE 45"), "{whole}");
    }

    #[test]
    fn an_idling_qresync_client_hears_vanished() {
        let config = config();
        let (mut idler, mut other) = (Session::new(config.clone()), Session::new(config));
        for s in [&mut idler, &mut other] {
            say(s, "a LOGIN me pw\r\n");
            say(s, "b ENABLE QRESYNC\r\n");
            say(s, "c SELECT INBOX\r\n");
        }
        assert!(say(&mut idler, "d IDLE\r\n").starts_with("+ "));
        let moved = say(&mut other, "d UID STORE 2 +FLAGS (\\Deleted)\r\n");
        assert!(moved.contains("d OK"), "{moved}");
        say(&mut other, "e UID EXPUNGE 2\r\n");
        let mut heard = Vec::new();
        idler.changed(&mut heard).unwrap();
        let heard = String::from_utf8(heard).unwrap();
        assert!(heard.contains("* VANISHED 2\r\n"), "{heard}");
        assert!(!heard.contains("EXPUNGE"), "{heard}");
    }

    #[test]
    fn plain_list_carries_children_and_special_use() {
        let mut s = session();
        say(&mut s, "a LOGIN me pw\r\n");
        say(&mut s, "b CREATE Sent\r\n");
        say(&mut s, "c CREATE INBOX/Old\r\n");
        let listed = say(&mut s, "d LIST \"\" \"*\"\r\n");
        assert!(
            listed.contains("* LIST (\\HasChildren) \"/\" INBOX\r\n"),
            "{listed}"
        );
        assert!(
            listed.contains("* LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\n"),
            "{listed}"
        );
        assert!(listed.contains("INBOX/Old"), "{listed}");
    }

    #[test]
    fn mailbox_names_are_modified_utf_7_until_utf8_is_enabled() {
        let mut s = session();
        say(&mut s, "a LOGIN me pw\r\n");
        assert!(say(&mut s, "b CREATE Entw&APw-rfe\r\n").starts_with("b OK"));
        let root = s.config.store.head_tree("main").unwrap();
        let names = mailbox::mailboxes(&s.config.store, &root, "me").unwrap();
        assert!(names.iter().any(|n| n == "Entwürfe"), "{names:?}");
        let listed = say(&mut s, "c LIST \"\" \"Entw*\"\r\n");
        assert!(listed.contains("\"/\" Entw&APw-rfe\r\n"), "{listed}");
        assert!(say(&mut s, "d SELECT \"Entw&APw-rfe\"\r\n").contains("d OK"));
        assert!(say(&mut s, "e CREATE R&D\r\n").starts_with("e NO"));
        assert!(say(&mut s, "f ENABLE IMAP4rev2\r\n").contains("* ENABLED IMAP4rev2"));
        let listed = say(&mut s, "g LIST \"\" \"Entw*\"\r\n");
        assert!(listed.contains("\"/\" {9}\r\nEntwürfe\r\n"), "{listed}");
        assert!(say(&mut s, "h CREATE \"Größe\"\r\n").starts_with("h OK"));
        assert!(say(&mut s, "i STATUS \"Entwürfe\" (MESSAGES)\r\n").contains("i OK"));
    }

    #[test]
    fn append_keeps_the_internal_date_it_was_given() {
        let mut s = session();
        say(&mut s, "a LOGIN me pw\r\n");
        say(&mut s, "b CREATE Kept\r\n");
        say(
            &mut s,
            "c APPEND INBOX (\\Seen) \" 7-Jul-1996 02:44:25 -0700\" {5+}\r\nhello\r\n",
        );
        say(&mut s, "d SELECT INBOX\r\n");
        let fetched = say(&mut s, "e UID FETCH 4 (INTERNALDATE)\r\n");
        assert!(
            fetched.contains("INTERNALDATE \"07-Jul-1996 02:44:25 -0700\""),
            "{fetched}"
        );
        say(&mut s, "f UID COPY 4 Kept\r\n");
        assert!(say(&mut s, "g SEARCH SINCE 7-Jul-1996\r\n").contains("* SEARCH 4\r\n"));
        say(&mut s, "h SELECT Kept\r\n");
        let copied = say(&mut s, "i FETCH 1 (INTERNALDATE)\r\n");
        assert!(copied.contains("07-Jul-1996 02:44:25 -0700"), "{copied}");
    }

    /// imap-codec 2.0.0-alpha.10 parses only `LIST SP mailbox SP list-mailbox` (its
    /// `ext_list_extended` feature adds only response types), so RFC 5258's forms are
    /// read by [`list_extended`]; this fails once the codec learns them.
    #[test]
    fn the_codec_does_not_parse_extended_list() {
        for line in [
            "a LIST (SPECIAL-USE) \"\" \"*\"\r\n",
            "a LIST \"\" \"*\" RETURN (STATUS (MESSAGES UNSEEN UIDNEXT))\r\n",
            "a LIST \"\" (\"INBOX\" \"Sent\")\r\n",
        ] {
            assert!(
                CommandCodec::default().decode(line.as_bytes()).is_err(),
                "{line}"
            );
        }
    }

    #[test]
    fn extended_list_selects_returns_and_counts() {
        let mut s = session();
        assert!(say(&mut s, "a LIST (SPECIAL-USE) \"\" *\r\n").starts_with("a BAD"));
        say(&mut s, "z LOGIN me pw\r\n");
        for name in ["Sent", "Archive", "Archive/2024", "Junk"] {
            assert!(say(&mut s, &format!("b CREATE {name}\r\n")).starts_with("b OK"));
        }
        say(&mut s, "c SUBSCRIBE Archive/2024\r\n");
        say(&mut s, "c SUBSCRIBE Sent\r\n");
        let capability = say(&mut s, "d CAPABILITY\r\n");
        assert!(capability.contains(" LIST-EXTENDED") && capability.contains(" LIST-STATUS"));

        let special = say(&mut s, "e LIST (SPECIAL-USE) \"\" *\r\n");
        assert!(special.contains("\\Sent) \"/\" Sent\r\n"), "{special}");
        assert!(special.contains("\\Junk) \"/\" Junk\r\n"), "{special}");
        assert!(
            special.contains("\\Archive) \"/\" Archive\r\n"),
            "{special}"
        );
        assert!(
            !special.contains("INBOX") && !special.contains("2024"),
            "{special}"
        );
        assert!(special.ends_with("e OK LIST done\r\n"), "{special}");

        let recursive = say(&mut s, "f LIST (SUBSCRIBED RECURSIVEMATCH) \"\" %\r\n");
        assert!(
            recursive.contains(
                "* LIST (\\HasChildren \\Archive) \"/\" Archive (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n"
            ),
            "{recursive}"
        );
        assert!(
            recursive.contains("\\Subscribed) \"/\" Sent\r\n"),
            "{recursive}"
        );
        assert!(
            !recursive.contains("INBOX") && !recursive.contains("2024"),
            "{recursive}"
        );

        let several = say(
            &mut s,
            "g LIST \"\" (INBOX \"Archive/*\") RETURN (SUBSCRIBED)\r\n",
        );
        assert!(several.contains("\"/\" INBOX\r\n"), "{several}");
        assert!(
            several.contains("(\\HasNoChildren \\Subscribed) \"/\" Archive/2024\r\n"),
            "{several}"
        );
        assert_eq!(several.matches("* LIST").count(), 2, "{several}");

        let status = say(
            &mut s,
            "h LIST \"\" INBOX RETURN (STATUS (MESSAGES UNSEEN))\r\n",
        );
        let lines: Vec<&str> = status.lines().collect();
        assert_eq!(lines[0], "* LIST (\\HasNoChildren) \"/\" INBOX", "{status}");
        assert_eq!(lines[1], "* STATUS INBOX (MESSAGES 3 UNSEEN 3)", "{status}");

        for bad in [
            "i LIST (RECURSIVEMATCH) \"\" *\r\n",
            "i LIST \"\" * RETURN (BOGUS)\r\n",
        ] {
            assert!(say(&mut s, bad).starts_with("i BAD"), "{bad}");
        }
    }

    #[test]
    fn hostile_input_gets_answers_not_panics() {
        let mut s = session();
        assert!(say(&mut s, "a SELECT INBOX\r\n").starts_with("a BAD"));
        assert!(say(&mut s, "garbage\r\n").starts_with("* BAD"));
        assert!(say(&mut s, "b FETCH 1 (FLAGS)\r\n").starts_with("b BAD"));
        say(&mut s, "c LOGIN me pw\r\n");
        assert!(say(&mut s, "d FETCH 1 FLAGS\r\n").starts_with("d BAD"));
        assert!(say(&mut s, "e APPEND INBOX {999999999}\r\n").starts_with("e NO [TOOBIG]"));
        assert!(say(&mut s, "f SELECT Nowhere\r\n").contains("f NO [TRYCREATE]"));
        assert!(say(&mut s, "g CREATE .hidden\r\n").starts_with("g NO"));
        say(&mut s, "h SELECT INBOX\r\n");
        let none = say(&mut s, "i FETCH 99:100 (FLAGS)\r\n");
        assert!(none.starts_with("i OK"), "{none}");
        let partial = say(
            &mut s,
            "j UID FETCH 1 (BODY.PEEK[TEXT]<100.5> BODY.PEEK[9.1])\r\n",
        );
        assert!(partial.contains("j OK"), "{partial}");
        assert!(say(&mut s, "k APPEND INBOX {3+}\r\nab").is_empty());
        assert!(say(&mut s, "c\r\n").contains("k OK [APPENDUID"));
    }
}
