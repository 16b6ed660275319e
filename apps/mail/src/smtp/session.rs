//! One inbound SMTP conversation as a state machine: bytes in, [`Action`]s out.
//!
//! It never relays: a recipient outside the user's domains is refused with 554 whatever
//! the client claims, and only recipients with a mailbox are accepted. After `STARTTLS`
//! anything the client sent ahead is discarded (RFC 3207, section 4.2), and the client
//! must greet again. A message is acknowledged only after the shell reports it
//! delivered ([`Session::delivered`]), so a `250` always means the message is in the
//! store.

use smtp_proto::request::receiver::{DataReceiver, RequestReceiver};
use smtp_proto::{Error as ParseError, Request};

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
}

/// A message to deliver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The reverse path (empty for bounces).
    pub from: String,
    /// The local users it is for.
    pub to: Vec<String>,
    /// The name the client gave in EHLO/HELO.
    pub helo: String,
    /// Whether it arrived over TLS.
    pub tls: bool,
    /// The message, as sent (dot-unstuffed).
    pub data: Vec<u8>,
}

/// What the shell must do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send these bytes.
    Send(Vec<u8>),
    /// Start TLS on the connection now (the `220` went out in the previous `Send`).
    StartTls,
    /// Deliver this message, then call [`Session::delivered`].
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
        to: Vec<String>,
    },
    Data {
        envelope: Envelope,
        receiver: DataReceiver,
    },
    Delivering,
    Closed,
}

/// One SMTP conversation.
pub struct Session {
    config: Config,
    tls: bool,
    helo: String,
    state: State,
    pending: Vec<u8>,
    requests: RequestReceiver,
}

impl Session {
    /// A new conversation; `tls` when the connection is already encrypted.
    pub fn new(config: Config, tls: bool) -> Session {
        Session {
            config,
            tls,
            helo: String::new(),
            state: State::Greeting,
            pending: Vec::new(),
            requests: RequestReceiver::default(),
        }
    }

    /// The banner to send first.
    pub fn banner(&self) -> Vec<u8> {
        format!("220 {} ESMTP Kith\r\n", self.config.host).into_bytes()
    }

    /// Takes bytes from the client; `is_user` says whether a local user has a mailbox.
    pub fn feed(&mut self, bytes: &[u8], is_user: &dyn Fn(&str) -> bool) -> Vec<Action> {
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
                _ => match self.next_request() {
                    Next::NeedMore => break,
                    Next::Invalid(reply) => {
                        replies.extend_from_slice(reply);
                        None
                    }
                    Next::Request(request) => self.handle(request, &mut replies, is_user),
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
    pub fn delivered(&mut self, result: Result<String, String>) -> Vec<u8> {
        self.state = State::Ready;
        match result {
            Ok(id) => format!("250 2.0.0 Ok: delivered as {id}\r\n").into_bytes(),
            Err(why) => {
                tracing::warn!("delivery failed: {why}");
                b"451 4.3.0 Could not store the message; try again later\r\n".to_vec()
            }
        }
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
        is_user: &dyn Fn(&str) -> bool,
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
            (Request::Mail { .. }, State::Greeting) => b"503 5.5.1 Say EHLO first\r\n",
            (Request::Mail { from }, State::Ready) => {
                if from.size > self.config.max_size {
                    b"552 5.3.4 Message too big for this server\r\n"
                } else {
                    self.state = State::Mail { from: from.address };
                    b"250 2.1.0 Ok\r\n"
                }
            }
            (Request::Mail { .. }, _) => b"503 5.5.1 Nested MAIL command\r\n",
            (Request::Rcpt { to }, State::Mail { from }) => {
                let from = std::mem::take(from);
                match recipient(&self.config, &to.address, is_user) {
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
                match recipient(&self.config, &rcpt.address, is_user) {
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
                    data: Vec::new(),
                };
                self.state = State::Data {
                    envelope,
                    receiver: DataReceiver::new(),
                };
                b"354 End data with <CR><LF>.<CR><LF>\r\n"
            }
            (Request::Data, _) => b"503 5.5.1 Need RCPT before DATA\r\n",
            (Request::Bdat { .. } | Request::Auth { .. }, _) => b"502 5.5.1 Not offered here\r\n",
            _ => b"502 5.5.1 Command not implemented\r\n",
        };
        replies.extend_from_slice(reply);
        None
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
        let last = lines.len() - 1;
        lines
            .iter()
            .enumerate()
            .map(|(i, l)| format!("250{}{l}\r\n", if i == last { ' ' } else { '-' }))
            .collect()
    }
}

/// The local user an address is for, or the refusal.
fn recipient(
    config: &Config,
    address: &str,
    is_user: &dyn Fn(&str) -> bool,
) -> Result<String, &'static [u8]> {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return Err(b"550 5.1.3 Give a full address, user@domain\r\n");
    };
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    if !config.domains.contains(&domain) {
        return Err(b"554 5.7.1 Relay access denied: this server only receives mail for its own domains\r\n");
    }
    let user = local
        .split('+')
        .next()
        .unwrap_or(local)
        .to_ascii_lowercase();
    if is_user(&user) {
        Ok(user)
    } else {
        Err(b"550 5.1.1 No such mailbox here\r\n")
    }
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
