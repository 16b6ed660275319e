//! Who really sent an inbound message: SPF for the client's address, DKIM signatures,
//! and the From domain's DMARC policy over both (mail-auth), written into an
//! `Authentication-Results` header (RFC 8601) in front of the message.
//!
//! Mail the user submitted after signing in is not checked: the header records the
//! sign-in instead. The checks only record; what to do with a failure (a Junk folder, a
//! refusal for `p=reject`) is left to the user's filters.

use std::net::{IpAddr, SocketAddr};

use hickory_resolver::config::ResolverOpts;
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{AuthenticatedMessage, AuthenticationResults, MessageAuthenticator};

use super::session::Envelope;

/// Checks inbound mail against the sender's DNS.
pub struct Checker {
    authenticator: MessageAuthenticator,
    runtime: tokio::runtime::Handle,
    host: String,
}

impl Checker {
    /// A checker that asks `resolvers` (the system's when empty), running its lookups on
    /// `runtime`; `host` names this server in the results.
    pub fn new(
        resolvers: &[SocketAddr],
        runtime: tokio::runtime::Handle,
        host: &str,
    ) -> Result<Checker, String> {
        let authenticator = if resolvers.is_empty() {
            MessageAuthenticator::new_system_conf()
        } else {
            let config = crate::queue::resolver_config(resolvers);
            MessageAuthenticator::new(config, ResolverOpts::default())
        }
        .map_err(|e| format!("setting up the DNS resolver for SPF, DKIM and DMARC: {e}"))?;
        Ok(Checker {
            authenticator,
            runtime,
            host: host.to_string(),
        })
    }

    /// The `Authentication-Results` header for a message from `peer`. Blocks the calling
    /// thread (which must not be one of `runtime`'s) while DNS answers.
    pub fn header(&self, envelope: &Envelope, peer: IpAddr) -> String {
        if let Some(user) = &envelope.user {
            return format!(
                "Authentication-Results: {}; auth=pass smtp.auth={user}\r\n",
                self.host
            );
        }
        let Some(message) = AuthenticatedMessage::parse(&envelope.data) else {
            return format!(
                "Authentication-Results: {}; dkim=permerror (unparsable message)\r\n",
                self.host
            );
        };
        self.runtime.block_on(self.check(&message, envelope, peer))
    }

    async fn check(
        &self,
        message: &AuthenticatedMessage<'_>,
        envelope: &Envelope,
        peer: IpAddr,
    ) -> String {
        let auth = &self.authenticator;
        let dkim = auth.verify_dkim(message).await;
        let helo = envelope.helo.as_str();
        let spf = auth
            .verify_spf(SpfParameters::verify(
                peer,
                helo,
                &self.host,
                &envelope.from,
            ))
            .await;
        let from_domain = envelope.from.rsplit_once('@').map_or(helo, |(_, d)| d);
        let dmarc = auth
            .verify_dmarc(DmarcParameters::new(message, &dkim, from_domain, &spf))
            .await;
        AuthenticationResults::new(&self.host)
            .with_dkim_results(&dkim, message.from())
            .with_spf_mailfrom_result(&spf, peer, &envelope.from, helo)
            .with_dmarc_result(&dmarc)
            .to_header()
    }
}
