//! One SMTP conversation as a state machine: bytes in, [`Action`]s out.
//!
//! A session serves one of two ports ([`Mode`]). On the inbound port it never relays: a
//! recipient outside the user's domains is refused with 554 whatever the client claims,
//! and only recipients with a mailbox are accepted. On the submission ports a client
//! must sign in (`AUTH PLAIN` or `AUTH LOGIN`, offered only over TLS) before `MAIL`, may
//! send only from its own addresses, and may then name any recipient. After `STARTTLS`
//! anything the client sent ahead is discarded (RFC 3207, section 4.2), and the client
//! must greet again. A message is acknowledged only after the shell reports it kept
//! ([`Session::delivered`]), so a `250` always means the message is in the store.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use smtp_proto::request::receiver::{DataReceiver, LineReceiver, RequestReceiver};
use smtp_proto::{AUTH_LOGIN, AUTH_PLAIN, Error as ParseError, Request};

/// Failed sign-ins after which the connection is closed.
const MAX_AUTH_FAILURES: u8 = 3;

/// Which port a session serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Port 25: mail for the user's domains from anywhere, no sign-in, no relaying.
    Inbound,
    /// Ports 587 and 465: the user's own clients, signed in, sending anywhere.
    Submission,
}

/// What the session is set up with.
#[derive(Clone, Debug)]
pub struct Config {
    /// The name this server gives itself.
    pub host: String,
    /// The domains it receives mail for, lower case.
    pub domains: Vec<String>,
    /// The largest message accepted, in bytes.
    pub max_size: usize,
    /// Whether `STARTTLS` is offered.
    pub offer_tls: bool,
    /// The port's role.
    pub mode: Mode,
}

/// Who has a mailbox here, and who may sign in.
pub trait Directory {
    /// Whether `user` (a local part, lower case) has a mailbox.
    fn is_user(&self, user: &str) -> bool;
    /// Whether `password` is `user`'s.
    fn authenticate(&self, user: &str, password: &str) -> bool;
}

/// One recipient of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recipient {
    /// A user of this server, by name.
    Local(String),
    /// An address elsewhere (submission only), for the outbound queue.
    Remote(String),
}

/// A message to deliver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The reverse path (empty for bounces).
    pub from: String,
    /// Who it is for.
    pub to: Vec<Recipient>,
    /// The name the client gave in EHLO/HELO.
    pub helo: String,
    /// Whether it arrived over TLS.
    pub tls: bool,
    /// The signed-in user who submitted it, if any.
    pub user: Option<String>,
    /// The message, as sent (dot-unstuffed).
    pub data: Vec<u8>,
}

/// Why a message was not stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Storing it failed (the reason, for the log); the client should try again later.
    Store(String),
    /// It fails DMARC and its From domain, named here, asks to reject such mail.
    Refused(String),
}

/// What the shell must do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send these bytes.
    Send(Vec<u8>),
    /// Start TLS on the connection now (the `220` went out in the previous `Send`).
    StartTls,
    /// Deliver or queue this message, then call [`Session::delivered`].
    Deliver(Envelope),
    /// Close the connection.
    Close,
}

/// The next thing in the client's bytes.
enum Next {
    Request(Request<String>),
    Invalid(&'static [u8]),
    NeedMore,
}

enum State {
    Greeting,
    Ready,
    Mail {
        from: String,
    },
    Rcpt {
        from: String,
        to: Vec<Recipient>,
    },
    Data {
        envelope: Envelope,
        receiver: DataReceiver,
    },
    Auth {
        login: bool,
        user: Option<String>,
        line: LineReceiver<()>,
    },
    Delivering,
    Closed,
}

/// One SMTP conversation.
pub struct Session {
    config: Config,
    tls: bool,
    helo: String,
    user: Option<String>,
    auth_failures: u8,
    state: State,
    pending: Vec<u8>,
    requests: RequestReceiver,
}

impl Session {
    /// A new conversation; `tls` when the connection is already encrypted (port 465).
    pub fn new(config: Config, tls: bool) -> Session {
        Session {
            config,
            tls,
            helo: String::new(),
            user: None,
            auth_failures: 0,
            state: State::Greeting,
            pending: Vec::new(),
            requests: RequestReceiver::default(),
        }
    }

    /// The banner to send first.
    pub fn banner(&self) -> Vec<u8> {
        format!("220 {} ESMTP Kith\r\n", self.config.host).into_bytes()
    }

    /// Takes bytes from the client; `directory` knows the users.
    pub fn feed(&mut self, bytes: &[u8], directory: &dyn Directory) -> Vec<Action> {
        self.pending.extend_from_slice(bytes);
        let mut out = Vec::new();
        let mut replies = Vec::new();
        loop {
            let action = match self.state {
                State::Delivering | State::Closed => break,
                State::Data { .. } => match self.take_data() {
                    Some(action) => Some(action),
                    None => break,
                },
                State::Auth { .. } => match self.take_auth_line(directory, &mut replies) {
                    Some(action) => action,
                    None => break,
                },
                _ => match self.next_request() {
                    Next::NeedMore => break,
                    Next::Invalid(reply) => {
                        replies.extend_from_slice(reply);
                        None
                    }
                    Next::Request(request) => self.handle(request, &mut replies, directory),
                },
            };
            if let Some(action) = action {
                flush(&mut out, &mut replies);
                if action == Action::StartTls {
                    // Nothing sent ahead of the handshake may be used (RFC 3207).
                    self.pending.clear();
                }
                let stop = matches!(
                    action,
                    Action::StartTls | Action::Close | Action::Deliver(_)
                );
                out.push(action);
                if stop {
                    break;
                }
            }
        }
        flush(&mut out, &mut replies);
        out
    }

    /// The reply once the shell has delivered (or failed to deliver) the message.
    pub fn delivered(&mut self, result: Result<String, Failure>) -> Vec<u8> {
        self.state = State::Ready;
        match result {
            Ok(id) => format!("250 2.0.0 Ok: delivered as {id}\r\n").into_bytes(),
            Err(Failure::Store(why)) => {
                tracing::warn!("delivery failed: {why}");
                b"451 4.3.0 Could not store the message; try again later\r\n".to_vec()
            }
            Err(Failure::Refused(domain)) => {
                tracing::info!("refused a message failing DMARC: {domain} publishes p=reject");
                format!(
                    "550 5.7.1 The message fails DMARC and {domain} asks to reject such mail\r\n"
                )
                .into_bytes()
            }
        }
    }

    /// Whether a mail transaction is under way (from `MAIL` until the reply to its data).
    pub fn in_transaction(&self) -> bool {
        matches!(
            self.state,
            State::Mail { .. } | State::Rcpt { .. } | State::Data { .. } | State::Delivering
        )
    }

    /// Whether the connection is over.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    fn next_request(&mut self) -> Next {
        let mut iter = self.pending.iter();
        let parsed = self.requests.ingest(&mut iter).map(into_owned);
        let consumed = self.pending.len() - iter.as_slice().len();
        self.pending.drain(..consumed);
        match parsed {
            Ok(request) => Next::Request(request),
            Err(ParseError::NeedsMoreData { .. }) => Next::NeedMore,
            Err(e) => Next::Invalid(parse_error(&e)),
        }
    }

    fn take_data(&mut self) -> Option<Action> {
        let State::Data { envelope, receiver } = &mut self.state else {
            return None;
        };
        let mut iter = self.pending.iter();
        let done = receiver.ingest(&mut iter, &mut envelope.data);
        let consumed = self.pending.len() - iter.as_slice().len();
        self.pending.drain(..consumed);
        if !done {
            return None;
        }
        let State::Data { envelope, .. } = std::mem::replace(&mut self.state, State::Delivering)
        else {
            unreachable!("checked above")
        };
        if envelope.data.len() > self.config.max_size {
            self.state = State::Ready;
            return Some(Action::Send(
                b"552 5.3.4 Message too big for this server\r\n".to_vec(),
            ));
        }
        Some(Action::Deliver(envelope))
    }

    /// Handles one command: a reply goes to `replies`; an action ends this round.
    fn handle(
        &mut self,
        request: Request<String>,
        replies: &mut Vec<u8>,
        directory: &dyn Directory,
    ) -> Option<Action> {
        let reply: &[u8] = match (request, &mut self.state) {
            (Request::Ehlo { host }, _) => {
                self.helo = host;
                self.state = State::Ready;
                replies.extend_from_slice(self.ehlo().as_bytes());
                return None;
            }
            (Request::Helo { host }, _) => {
                self.helo = host;
                self.state = State::Ready;
                replies.extend_from_slice(format!("250 {}\r\n", self.config.host).as_bytes());
                return None;
            }
            (Request::Quit, _) => {
                replies.extend_from_slice(b"221 2.0.0 Bye\r\n");
                self.state = State::Closed;
                return Some(Action::Close);
            }
            (Request::Noop { .. }, _) => b"250 2.0.0 Ok\r\n",
            (Request::Rset, State::Greeting) => b"250 2.0.0 Ok\r\n",
            (Request::Rset, _) => {
                self.state = State::Ready;
                b"250 2.0.0 Ok\r\n"
            }
            (Request::Vrfy { .. }, _) => b"252 2.5.0 Send some mail and see\r\n",
            (Request::StartTls, _) if self.tls || !self.config.offer_tls => {
                b"503 5.5.1 TLS is not available now\r\n"
            }
            (Request::StartTls, _) => {
                replies.extend_from_slice(b"220 2.0.0 Ready to start TLS\r\n");
                self.tls = true;
                self.state = State::Greeting;
                return Some(Action::StartTls);
            }
            (Request::Auth { .. }, _) if self.config.mode == Mode::Inbound => {
                b"502 5.5.1 Sign in on the submission port (587 or 465)\r\n"
            }
            (Request::Auth { .. }, _) if !self.tls => {
                b"538 5.7.11 Encryption required: send STARTTLS first\r\n"
            }
            (Request::Auth { .. }, _) if self.user.is_some() => b"503 5.5.1 Already signed in\r\n",
            (Request::Auth { .. }, State::Greeting) => b"503 5.5.1 Say EHLO first\r\n",
            (
                Request::Auth {
                    mechanism,
                    initial_response,
                },
                State::Ready,
            ) => {
                return self.start_auth(mechanism, initial_response, directory, replies);
            }
            (Request::Auth { .. }, _) => {
                b"503 5.5.1 AUTH is not allowed during a mail transaction\r\n"
            }
            (Request::Mail { .. }, State::Greeting) => b"503 5.5.1 Say EHLO first\r\n",
            (Request::Mail { .. }, State::Ready)
                if self.config.mode == Mode::Submission && self.user.is_none() =>
            {
                b"530 5.7.0 Authentication required: sign in with AUTH first\r\n"
            }
            (Request::Mail { from }, State::Ready) => {
                if from.size > self.config.max_size {
                    b"552 5.3.4 Message too big for this server\r\n"
                } else if !self.may_send_as(&from.address) {
                    b"553 5.7.1 Sender address is not one of the signed-in user's\r\n"
                } else {
                    self.state = State::Mail { from: from.address };
                    b"250 2.1.0 Ok\r\n"
                }
            }
            (Request::Mail { .. }, _) => b"503 5.5.1 Nested MAIL command\r\n",
            (Request::Rcpt { to }, State::Mail { from }) => {
                let from = std::mem::take(from);
                match recipient(&self.config, &to.address, directory) {
                    Ok(user) => {
                        self.state = State::Rcpt {
                            from,
                            to: vec![user],
                        };
                        b"250 2.1.5 Ok\r\n"
                    }
                    Err(reply) => {
                        self.state = State::Mail { from };
                        reply
                    }
                }
            }
            (Request::Rcpt { to: rcpt }, State::Rcpt { to, .. }) => {
                match recipient(&self.config, &rcpt.address, directory) {
                    Ok(_) if to.len() >= 100 => b"452 4.5.3 Too many recipients\r\n",
                    Ok(user) => {
                        if !to.contains(&user) {
                            to.push(user);
                        }
                        b"250 2.1.5 Ok\r\n"
                    }
                    Err(reply) => reply,
                }
            }
            (Request::Rcpt { .. }, _) => b"503 5.5.1 Need MAIL before RCPT\r\n",
            (Request::Data, State::Rcpt { from, to }) => {
                let envelope = Envelope {
                    from: std::mem::take(from),
                    to: std::mem::take(to),
                    helo: self.helo.clone(),
                    tls: self.tls,
                    user: self.user.clone(),
                    data: Vec::new(),
                };
                self.state = State::Data {
                    envelope,
                    receiver: DataReceiver::new(),
                };
                b"354 End data with <CR><LF>.<CR><LF>\r\n"
            }
            (Request::Data, _) => b"503 5.5.1 Need RCPT before DATA\r\n",
            (Request::Bdat { .. }, _) => b"502 5.5.1 Not offered here\r\n",
            _ => b"502 5.5.1 Command not implemented\r\n",
        };
        replies.extend_from_slice(reply);
        None
    }

    /// Begins `AUTH`: checks an initial response at once, else asks for one.
    fn start_auth(
        &mut self,
        mechanism: u64,
        initial: String,
        directory: &dyn Directory,
        replies: &mut Vec<u8>,
    ) -> Option<Action> {
        let login = match mechanism {
            AUTH_PLAIN => false,
            AUTH_LOGIN => true,
            _ => {
                replies.extend_from_slice(b"504 5.5.4 Use AUTH PLAIN or AUTH LOGIN\r\n");
                return None;
            }
        };
        self.state = State::Auth {
            login,
            user: None,
            line: LineReceiver::default(),
        };
        match (login, initial.is_empty()) {
            (_, false) => self.auth_response(initial.trim().as_bytes(), directory, replies),
            (false, true) => {
                replies.extend_from_slice(b"334 \r\n");
                None
            }
            (true, true) => {
                replies.extend_from_slice(b"334 VXNlcm5hbWU6\r\n");
                None
            }
        }
    }

    /// Reads one line of an `AUTH` exchange, if it has arrived; `None` when it has not.
    fn take_auth_line(
        &mut self,
        directory: &dyn Directory,
        replies: &mut Vec<u8>,
    ) -> Option<Option<Action>> {
        let State::Auth { line, .. } = &mut self.state else {
            return None;
        };
        let mut iter = self.pending.iter();
        let done = line.ingest(&mut iter);
        let consumed = self.pending.len() - iter.as_slice().len();
        self.pending.drain(..consumed);
        if !done {
            return None;
        }
        let text = std::mem::take(&mut line.buf);
        Some(self.auth_response(text.trim_ascii(), directory, replies))
    }

    /// Takes one client response in an `AUTH` exchange (`=` is an empty one).
    fn auth_response(
        &mut self,
        text: &[u8],
        directory: &dyn Directory,
        replies: &mut Vec<u8>,
    ) -> Option<Action> {
        if text == b"*" {
            self.state = State::Ready;
            replies.extend_from_slice(b"501 5.7.0 Authentication cancelled\r\n");
            return None;
        }
        let decoded = if text == b"=" {
            Some(Vec::new())
        } else {
            BASE64.decode(text).ok()
        };
        let State::Auth { login, user, .. } = &mut self.state else {
            return None;
        };
        let credentials = match (decoded, *login, user.take()) {
            (None, ..) => None,
            (Some(d), false, _) => plain_credentials(&d),
            (Some(d), true, None) => {
                *user = String::from_utf8(d).ok();
                if user.is_some() {
                    replies.extend_from_slice(b"334 UGFzc3dvcmQ6\r\n");
                    return None;
                }
                None
            }
            (Some(d), true, Some(name)) => String::from_utf8(d).ok().map(|p| (name, p)),
        };
        self.state = State::Ready;
        self.finish_auth(credentials, directory, replies)
    }

    /// Signs the client in, or counts a failure (closing after too many).
    fn finish_auth(
        &mut self,
        credentials: Option<(String, String)>,
        directory: &dyn Directory,
        replies: &mut Vec<u8>,
    ) -> Option<Action> {
        let user = credentials.and_then(|(user, password)| {
            let user = user.to_ascii_lowercase();
            directory.authenticate(&user, &password).then_some(user)
        });
        if let Some(user) = user {
            tracing::info!(user, "smtp: signed in");
            self.user = Some(user);
            replies.extend_from_slice(b"235 2.7.0 Authentication successful\r\n");
            return None;
        }
        self.auth_failures += 1;
        if self.auth_failures >= MAX_AUTH_FAILURES {
            replies.extend_from_slice(b"421 4.7.0 Too many failed sign-ins, closing\r\n");
            self.state = State::Closed;
            return Some(Action::Close);
        }
        replies.extend_from_slice(b"535 5.7.8 Authentication credentials invalid\r\n");
        None
    }

    /// Whether the client may use `address` as the reverse path: anyone on the inbound
    /// port; on submission, only the signed-in user's own addresses (any `+tag`).
    fn may_send_as(&self, address: &str) -> bool {
        if self.config.mode == Mode::Inbound {
            return true;
        }
        let Some((local, domain)) = address.rsplit_once('@') else {
            return false;
        };
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        self.config.domains.contains(&domain) && self.user.as_deref() == Some(&local_user(local))
    }

    fn ehlo(&self) -> String {
        let mut lines = vec![
            self.config.host.clone(),
            "PIPELINING".into(),
            "8BITMIME".into(),
            "SMTPUTF8".into(),
            "ENHANCEDSTATUSCODES".into(),
            format!("SIZE {}", self.config.max_size),
        ];
        if self.config.offer_tls && !self.tls {
            lines.push("STARTTLS".into());
        }
        if self.config.mode == Mode::Submission && self.tls && self.user.is_none() {
            lines.push("AUTH PLAIN LOGIN".into());
        }
        let last = lines.len() - 1;
        lines
            .iter()
            .enumerate()
            .map(|(i, l)| format!("250{}{l}\r\n", if i == last { ' ' } else { '-' }))
            .collect()
    }
}

/// Who an address is for, or the refusal: a local user on the user's domains; any other
/// address only on the submission port.
fn recipient(
    config: &Config,
    address: &str,
    directory: &dyn Directory,
) -> Result<Recipient, &'static [u8]> {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return Err(b"550 5.1.3 Give a full address, user@domain\r\n");
    };
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    if !config.domains.contains(&domain) {
        return match config.mode {
            Mode::Submission if !local.is_empty() && !domain.is_empty() => {
                Ok(Recipient::Remote(address.to_string()))
            }
            Mode::Submission => Err(b"550 5.1.3 Give a full address, user@domain\r\n"),
            Mode::Inbound => Err(
                b"554 5.7.1 Relay access denied: this server only receives mail for its own domains\r\n",
            ),
        };
    }
    let user = local_user(local);
    if !user.starts_with('.') && directory.is_user(&user) {
        Ok(Recipient::Local(user))
    } else {
        Err(b"550 5.1.1 No such mailbox here\r\n")
    }
}

/// The user a local part names: lower case, without a `+tag`.
fn local_user(local: &str) -> String {
    local
        .split('+')
        .next()
        .unwrap_or(local)
        .to_ascii_lowercase()
}

/// Decodes an `AUTH PLAIN` response: `[authzid] NUL authcid NUL password`.
fn plain_credentials(decoded: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(decoded).ok()?;
    let mut parts = text.split('\0');
    let (authz, user, password) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || (!authz.is_empty() && authz != user) {
        return None;
    }
    Some((user.to_string(), password.to_string()))
}

fn flush(out: &mut Vec<Action>, replies: &mut Vec<u8>) {
    if !replies.is_empty() {
        out.push(Action::Send(std::mem::take(replies)));
    }
}

fn into_owned(request: Request<std::borrow::Cow<'_, str>>) -> Request<String> {
    match request {
        Request::Ehlo { host } => Request::Ehlo {
            host: host.into_owned(),
        },
        Request::Lhlo { host } => Request::Lhlo {
            host: host.into_owned(),
        },
        Request::Helo { host } => Request::Helo {
            host: host.into_owned(),
        },
        Request::Mail { from } => Request::Mail {
            from: from.into_owned(),
        },
        Request::Rcpt { to } => Request::Rcpt {
            to: to.into_owned(),
        },
        Request::Bdat {
            chunk_size,
            is_last,
        } => Request::Bdat {
            chunk_size,
            is_last,
        },
        Request::Auth {
            mechanism,
            initial_response,
        } => Request::Auth {
            mechanism,
            initial_response: initial_response.into_owned(),
        },
        Request::Noop { value } => Request::Noop {
            value: value.into_owned(),
        },
        Request::Vrfy { value } => Request::Vrfy {
            value: value.into_owned(),
        },
        Request::StartTls => Request::StartTls,
        Request::Data => Request::Data,
        Request::Rset => Request::Rset,
        Request::Quit => Request::Quit,
        _ => Request::Help {
            value: String::new(),
        },
    }
}

fn parse_error(e: &ParseError) -> &'static [u8] {
    match e {
        ParseError::UnknownCommand => b"500 5.5.1 Unknown command\r\n",
        ParseError::InvalidSenderAddress => b"501 5.1.7 Bad sender address\r\n",
        ParseError::InvalidRecipientAddress => b"501 5.1.3 Bad recipient address\r\n",
        ParseError::ResponseTooLong => b"500 5.5.2 Line too long\r\n",
        ParseError::UnsupportedParameter { .. } => b"555 5.5.4 Unsupported parameter\r\n",
        _ => b"501 5.5.2 Syntax error\r\n",
    }
}
