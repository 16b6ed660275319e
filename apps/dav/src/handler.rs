//! The WebDAV methods, from a parsed request to a response.
//!
//! Every request reads the branch head once, so it sees one version of the store, and
//! changes made by sync from another replica show up on the next request. Writes go
//! through the [`Writer`]; reads never wait for it.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, header};
use kith_store::{EntryKind, Hash, Store, encode_blob};

use crate::accounts::Verifier;
use crate::body::{Body, full, stream};
use crate::error::Result;
use crate::kind::{CollectionKind, Refusal, Reply};
use crate::multistatus::{self, PropStat, error_body};
use crate::props::{DEAD_PROPS, Props, Resource, etag, render_dead};
use crate::report::{self, Report, is_item_name};
use crate::request::{self, Condition, Propfind, Update};
use crate::target::Target;
use crate::uids::Uids;
use crate::writer::{Change, View, Writer, internal};
use crate::xml::{self, DAV, Element, Name};

/// What the DAV core serves.
pub struct Config {
    /// The store.
    pub store: Store,
    /// The branch served.
    pub branch: String,
    /// The author of the commits it makes (this device).
    pub author: String,
    /// The collection kinds served (address books, calendars).
    pub kinds: Vec<Arc<dyn CollectionKind>>,
}

/// The DAV service: configuration, accounts, the writer and the UID indexes.
pub struct Dav {
    store: Store,
    branch: String,
    kinds: Arc<[Arc<dyn CollectionKind>]>,
    verifier: Verifier,
    writer: Writer,
    uids: Arc<Uids>,
}

/// The version of the store one request reads.
#[derive(Clone, Copy)]
struct Snap {
    head: Option<Hash>,
    root: Hash,
}

/// A request, read whole.
pub struct Request {
    /// The method.
    pub method: Method,
    /// The path (percent-encoded, without the query).
    pub path: String,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

type Response = http::Response<Body>;

/// Properties that clients cannot set.
const PROTECTED: &[&str] = &[
    "resourcetype",
    "getetag",
    "getcontentlength",
    "getcontenttype",
    "getlastmodified",
    "sync-token",
    "current-user-principal",
    "current-user-privilege-set",
    "supported-report-set",
    "owner",
    "principal-URL",
];

impl Dav {
    /// The service; starts its writer on the current tokio runtime.
    pub fn new(config: Config) -> Dav {
        let writer = Writer::start(config.store.clone(), config.branch.clone(), config.author);
        Dav {
            store: config.store,
            branch: config.branch,
            kinds: config.kinds.into(),
            verifier: Verifier::default(),
            writer,
            uids: Arc::default(),
        }
    }

    /// Answers one request.
    pub async fn handle(&self, req: Request) -> Response {
        match self.route(req).await {
            Ok(r) => r,
            Err(refusal) => refused(&refusal),
        }
    }

    async fn route(&self, req: Request) -> Result<Response, Refusal> {
        let target = Target::parse(&req.path);
        if req.method == Method::OPTIONS {
            return Ok(self.options());
        }
        if let Target::WellKnown(service) = &target {
            return well_known(service);
        }
        let snap = self.snap()?;
        let user = self.authenticate(&snap, &req.headers)?;
        check_access(&target, &user)?;
        if target == Target::Unknown {
            return Err(unknown(&req.method));
        }
        match req.method.as_str() {
            "PROPFIND" => self.propfind(snap, user, target, &req).await,
            "PROPPATCH" => self.proppatch(snap, &user, target, &req).await,
            "MKCOL" => self.mkcol(&target, &req, false).await,
            "MKCALENDAR" => self.mkcol(&target, &req, true).await,
            "REPORT" => self.report(snap, user, target, &req).await,
            "GET" | "HEAD" => self.get(snap, &target, &req),
            "PUT" => self.put(&target, &req).await,
            "DELETE" => self.delete(snap, &target, &req).await,
            _ => Err(Refusal::plain(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not supported",
            )),
        }
    }

    fn snap(&self) -> Result<Snap, Refusal> {
        let head = self.store.head(&self.branch).map_err(internal)?;
        let root = match head {
            Some(c) => self.store.commit(&c).map_err(internal)?.tree,
            None => self.store.empty_tree().map_err(internal)?,
        };
        Ok(Snap { head, root })
    }

    fn authenticate(&self, snap: &Snap, headers: &HeaderMap) -> Result<String, Refusal> {
        let creds = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(request::basic_auth);
        if let Some((user, password)) = creds {
            let ok = self
                .verifier
                .check(&self.store, &snap.root, &user, &password)
                .map_err(|e| Refusal::plain(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
            if ok {
                return Ok(user);
            }
            tracing::info!(user = %user, "dav: wrong password");
        }
        Err(Refusal::plain(
            StatusCode::UNAUTHORIZED,
            "sign in with your Kith user name and password (`kith user add`)",
        ))
    }

    fn kind(&self, prefix: &str) -> Option<Arc<dyn CollectionKind>> {
        self.kinds.iter().find(|k| k.prefix() == prefix).cloned()
    }

    fn options(&self) -> Response {
        let mut classes = vec!["1", "3", "extended-mkcol"];
        classes.extend(self.kinds.iter().map(|k| k.dav_class()));
        http::Response::builder()
            .status(StatusCode::OK)
            .header("DAV", classes.join(", "))
            .header(
                header::ALLOW,
                "OPTIONS, GET, HEAD, PUT, DELETE, PROPFIND, PROPPATCH, MKCOL, MKCALENDAR, REPORT",
            )
            .header(header::CONTENT_LENGTH, "0")
            .body(full(Bytes::new()))
            .expect("a valid response")
    }

    /// The resource a target names at `snap`, if it exists.
    fn resource(&self, snap: &Snap, target: &Target) -> Result<Option<Resource>, Refusal> {
        let known = |k: &str| self.kind(k);
        Ok(match target {
            Target::Root | Target::Principals => Some(Resource::Folder(target.clone())),
            Target::Principal(u) => Some(Resource::Principal(u.clone())),
            Target::KindRoot(k) => known(k).map(|_| Resource::Folder(target.clone())),
            Target::Home(k, _) => known(k).map(|kind| Resource::Home(target.clone(), kind)),
            Target::Collection(k, ..) => match (known(k), self.find(snap, target)?) {
                (Some(kind), Some((EntryKind::Dir, h))) => {
                    Some(Resource::Collection(target.clone(), kind, h))
                }
                _ => None,
            },
            Target::Item(k, _, _, name) => match (known(k), self.find(snap, target)?) {
                (Some(kind), Some((EntryKind::File, h))) if is_item_name(kind.as_ref(), name) => {
                    Some(Resource::Item(target.clone(), kind, h))
                }
                _ => None,
            },
            Target::WellKnown(_) | Target::Unknown => None,
        })
    }

    fn find(&self, snap: &Snap, target: &Target) -> Result<Option<(EntryKind, Hash)>, Refusal> {
        match self.store.find(&snap.root, &target.store_path()) {
            Ok(found) => Ok(found),
            Err(kith_store::Error::WrongKind { .. }) => Ok(None),
            Err(e) => Err(internal(e)),
        }
    }

    fn existing(&self, snap: &Snap, target: &Target) -> Result<Resource, Refusal> {
        self.resource(snap, target)?
            .ok_or_else(|| Refusal::plain(StatusCode::NOT_FOUND, "no such resource"))
    }

    /// The members a Depth: 1 request adds after `res`.
    fn members(&self, snap: &Snap, user: &str, res: &Resource) -> Result<Vec<Resource>, Refusal> {
        let homes = |kinds: Vec<Arc<dyn CollectionKind>>| {
            kinds
                .into_iter()
                .map(|k| Resource::Home(Target::Home(k.prefix().into(), user.into()), k))
                .collect::<Vec<_>>()
        };
        Ok(match res {
            Resource::Folder(Target::Root) => {
                let mut v = vec![Resource::Principal(user.into())];
                v.extend(homes(self.kinds.to_vec()));
                v
            }
            Resource::Folder(Target::Principals) => vec![Resource::Principal(user.into())],
            Resource::Folder(Target::KindRoot(k)) => homes(self.kind(k).into_iter().collect()),
            Resource::Home(t, kind) => self.collections(snap, t, kind)?,
            Resource::Collection(t, kind, dir) => self.items(t, kind, dir)?,
            _ => Vec::new(),
        })
    }

    fn collections(
        &self,
        snap: &Snap,
        home: &Target,
        kind: &Arc<dyn CollectionKind>,
    ) -> Result<Vec<Resource>, Refusal> {
        let Target::Home(k, u) = home else {
            return Ok(Vec::new());
        };
        let entries = self
            .store
            .list(&snap.root, &home.store_path())
            .map_err(internal)?;
        Ok(entries
            .into_iter()
            .filter(|e| e.kind == EntryKind::Dir && !e.name.starts_with('.'))
            .map(|e| {
                let t = Target::Collection(k.clone(), u.clone(), e.name);
                Resource::Collection(t, Arc::clone(kind), e.hash)
            })
            .collect())
    }

    fn items(
        &self,
        coll: &Target,
        kind: &Arc<dyn CollectionKind>,
        dir: &Hash,
    ) -> Result<Vec<Resource>, Refusal> {
        let Target::Collection(k, u, c) = coll else {
            return Ok(Vec::new());
        };
        let entries = self.store.list(dir, "/").map_err(internal)?;
        Ok(entries
            .into_iter()
            .filter(|e| e.kind == EntryKind::File && is_item_name(kind.as_ref(), &e.name))
            .map(|e| {
                let t = Target::Item(k.clone(), u.clone(), c.clone(), e.name);
                Resource::Item(t, Arc::clone(kind), e.hash)
            })
            .collect())
    }

    async fn propfind(
        &self,
        snap: Snap,
        user: String,
        target: Target,
        req: &Request,
    ) -> Result<Response, Refusal> {
        let want = Propfind::parse(&req.body).map_err(bad_request)?;
        let depth = request::depth(header_str(&req.headers, "depth"), 1).ok_or_else(|| {
            Refusal::plain(StatusCode::BAD_REQUEST, "Depth must be 0, 1 or infinity")
        })?;
        let res = self.existing(&snap, &target)?;
        let members = match depth {
            0 => Vec::new(),
            _ => self.members(&snap, &user, &res)?,
        };
        let store = self.store.clone();
        let kinds = Arc::clone(&self.kinds);
        let token = report::token(snap.head);
        let responses = std::iter::once(res).chain(members).map(move |r| {
            let props = Props {
                store: &store,
                user: &user,
                kinds: &kinds,
                sync_token: &token,
            };
            propfind_response(&props, &r, &want).unwrap_or_else(|e| {
                tracing::error!("dav: PROPFIND: {e}");
                multistatus::status_response(&r.target().href(), StatusCode::INTERNAL_SERVER_ERROR)
            })
        });
        let chunks = std::iter::once(multistatus::open())
            .chain(responses)
            .chain(std::iter::once(multistatus::close(None)));
        Ok(multi_status(Reply {
            chunks: Box::new(chunks),
            content_type: None,
        }))
    }

    async fn proppatch(
        &self,
        snap: Snap,
        user: &str,
        target: Target,
        req: &Request,
    ) -> Result<Response, Refusal> {
        let updates = request::proppatch(&req.body).map_err(bad_request)?;
        let Resource::Collection(t, kind, _) = self.existing(&snap, &target)? else {
            return Err(Refusal::plain(
                StatusCode::FORBIDDEN,
                "only collections have writable properties here",
            ));
        };
        let names: Vec<Name> = updates
            .iter()
            .map(|u| update_element(u).name.clone())
            .collect();
        if names.iter().any(|n| is_protected(kind.as_ref(), n)) {
            let stat = PropStat {
                found: Vec::new(),
                other: names
                    .iter()
                    .map(|n| {
                        let s = if is_protected(kind.as_ref(), n) {
                            StatusCode::FORBIDDEN
                        } else {
                            StatusCode::FAILED_DEPENDENCY
                        };
                        (n.clone(), s)
                    })
                    .collect(),
            };
            return Ok(single_multistatus(stat.response(&t.href())));
        }
        let path = t.store_path();
        let plan_kind = Arc::clone(&kind);
        let plan = Box::new(move |view: &View<'_>| {
            if !view.is_dir(&path)? {
                return Err(Refusal::plain(
                    StatusCode::NOT_FOUND,
                    "the collection is gone",
                ));
            }
            patch_changes(view, plan_kind.as_ref(), &path, &updates)
        });
        self.writer
            .submit(format!("PROPPATCH {} by {user}", t.store_path()), plan)
            .await?;
        let stat = PropStat {
            found: names.into_iter().map(|n| (n, String::new())).collect(),
            other: Vec::new(),
        };
        Ok(single_multistatus(stat.response(&t.href())))
    }

    /// MKCOL, or MKCALENDAR (`calendar`: RFC 4791 §5.3.1, only for calendar kinds).
    async fn mkcol(
        &self,
        target: &Target,
        req: &Request,
        calendar: bool,
    ) -> Result<Response, Refusal> {
        let props = request::mkcol(&req.body)
            .map_err(|e| Refusal::plain(StatusCode::UNSUPPORTED_MEDIA_TYPE, e.to_string()))?;
        let location = "collections can only be made directly in a home (/<kind>/<user>/<name>/)";
        let Target::Collection(k, ..) = target else {
            return Err(match calendar {
                true => Refusal::condition(
                    StatusCode::FORBIDDEN,
                    Name::new(xml::CALDAV, "calendar-collection-location-ok"),
                    location,
                ),
                false => Refusal::plain(StatusCode::FORBIDDEN, location),
            });
        };
        let kind = self
            .kind(k)
            .ok_or_else(|| Refusal::plain(StatusCode::FORBIDDEN, "no such kind of collection"))?;
        if calendar && !kind.resource_type().is(xml::CALDAV, "calendar") {
            return Err(Refusal::condition(
                StatusCode::FORBIDDEN,
                Name::new(xml::CALDAV, "calendar-collection-location-ok"),
                "MKCALENDAR works only under /calendar/<user>/",
            ));
        }
        check_resourcetype(kind.as_ref(), &props)?;
        kind.check_collection(&props)?;
        let path = target.store_path();
        let files = mkcol_files(kind.as_ref(), &path, &props);
        let plan_path = path.clone();
        let plan = Box::new(move |view: &View<'_>| {
            if view.is_dir(&plan_path)? || view.file(&plan_path)?.is_some() {
                return Err(Refusal::plain(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "the collection exists already",
                ));
            }
            Ok(files.clone())
        });
        self.writer.submit(format!("MKCOL {path}"), plan).await?;
        Ok(empty(StatusCode::CREATED))
    }

    async fn report(
        &self,
        snap: Snap,
        user: String,
        target: Target,
        req: &Request,
    ) -> Result<Response, Refusal> {
        let body = xml::parse(&req.body).map_err(bad_request)?;
        let Resource::Collection(t, kind, dir) = self.existing(&snap, &target)? else {
            return Err(unsupported_report());
        };
        let report = Report {
            store: self.store.clone(),
            head: snap.head,
            user,
            collection: t,
            dir,
            kind: Arc::clone(&kind),
            kinds: Arc::clone(&self.kinds),
        };
        if body.is(DAV, "sync-collection") {
            return Ok(multi_status(report::sync_collection(&report, &body)?));
        }
        match kind.report(&report, &body) {
            Some(reply) => Ok(multi_status(reply?)),
            None => Err(unsupported_report()),
        }
    }

    fn get(&self, snap: Snap, target: &Target, req: &Request) -> Result<Response, Refusal> {
        let res = self.existing(&snap, target)?;
        let Resource::Item(_, kind, hash) = res else {
            return Ok(text(
                StatusCode::OK,
                "Kith DAV: use a CardDAV or CalDAV client\n",
            ));
        };
        let tag = etag(&hash);
        if let Some(c) = header_str(&req.headers, "if-none-match")
            && Condition::parse(c).matches(Some(&tag))
        {
            return Ok(with_etag(empty(StatusCode::NOT_MODIFIED), &tag));
        }
        let bytes = self.store.blob(&hash).map_err(internal)?;
        let len = bytes.len();
        let body = if req.method == Method::HEAD {
            Bytes::new()
        } else {
            Bytes::from(bytes)
        };
        let mut resp = http::Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, kind.content_type())
            .header(header::CONTENT_LENGTH, len)
            .body(full(body))
            .expect("a valid response");
        resp = with_etag(resp, &tag);
        Ok(resp)
    }

    async fn put(&self, target: &Target, req: &Request) -> Result<Response, Refusal> {
        let Target::Item(k, _, _, name) = target else {
            return Err(Refusal::plain(
                StatusCode::METHOD_NOT_ALLOWED,
                "PUT an item into a collection",
            ));
        };
        let kind = self
            .kind(k)
            .ok_or_else(|| Refusal::plain(StatusCode::NOT_FOUND, "no such collection"))?;
        if !is_item_name(kind.as_ref(), name) {
            return Err(Refusal::plain(
                StatusCode::FORBIDDEN,
                format!("item names must end in .{}", kind.extension()),
            ));
        }
        let uid = kind.validate(&req.body)?;
        self.check_in_collection(kind.as_ref(), target, &req.body)?;
        let tag = etag(&kith_store::Hash::of(&encode_blob(&req.body)));
        let conditions = Conditions::of(&req.headers);
        let path = target.store_path();
        let coll = target_parent(&path);
        let bytes = req.body.to_vec();
        let (uids, plan_kind, plan_path, plan_name) = (
            Arc::clone(&self.uids),
            Arc::clone(&kind),
            path.clone(),
            name.clone(),
        );
        let created = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&created);
        let href = target.href();
        let plan = Box::new(move |view: &View<'_>| {
            if !view.is_dir(&coll)? {
                return Err(Refusal::plain(
                    StatusCode::CONFLICT,
                    "the collection does not exist",
                ));
            }
            let current = view.file(&plan_path)?;
            conditions.check(current.as_ref())?;
            let holder = uid_holder(view, &uids, plan_kind.as_ref(), &coll, &uid)?;
            if let Some(other) = holder.filter(|h| *h != plan_name) {
                let other_href = href
                    .rsplit_once('/')
                    .map_or(String::new(), |(d, _)| d.to_string());
                return Err(
                    plan_kind.uid_conflict(&format!("{other_href}/{}", crate::target::enc(&other)))
                );
            }
            flag.store(current.is_none(), std::sync::atomic::Ordering::SeqCst);
            Ok(vec![Change::Put(plan_path.clone(), bytes.clone())])
        });
        self.writer.submit(format!("PUT {path}"), plan).await?;
        let status = if created.load(std::sync::atomic::Ordering::SeqCst) {
            StatusCode::CREATED
        } else {
            StatusCode::NO_CONTENT
        };
        Ok(with_etag(empty(status), &tag))
    }

    /// Lets the kind check an item against its collection's properties (a calendar's
    /// supported components), read at the current head.
    fn check_in_collection(
        &self,
        kind: &dyn CollectionKind,
        target: &Target,
        bytes: &[u8],
    ) -> Result<(), Refusal> {
        let snap = self.snap()?;
        let coll = target_parent(&target.store_path());
        let dead = match self.store.find(&snap.root, &coll) {
            Ok(Some((EntryKind::Dir, dir))) => crate::props::dead_props(&self.store, &dir)
                .map_err(|e| Refusal::plain(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?,
            _ => return Ok(()),
        };
        kind.check_item(bytes, &dead)
    }

    async fn delete(
        &self,
        snap: Snap,
        target: &Target,
        req: &Request,
    ) -> Result<Response, Refusal> {
        if !matches!(target, Target::Item(..) | Target::Collection(..)) {
            return Err(Refusal::plain(
                StatusCode::FORBIDDEN,
                "this resource cannot be deleted",
            ));
        }
        self.existing(&snap, target)?;
        let conditions = Conditions::of(&req.headers);
        let path = target.store_path();
        let is_item = matches!(target, Target::Item(..));
        let plan_path = path.clone();
        let plan = Box::new(move |view: &View<'_>| {
            let exists = if is_item {
                let current = view.file(&plan_path)?;
                conditions.check(current.as_ref())?;
                current.is_some()
            } else {
                view.is_dir(&plan_path)?
            };
            if !exists {
                return Err(Refusal::plain(StatusCode::NOT_FOUND, "no such resource"));
            }
            Ok(vec![Change::Remove(plan_path.clone())])
        });
        self.writer.submit(format!("DELETE {path}"), plan).await?;
        Ok(empty(StatusCode::NO_CONTENT))
    }
}

/// `If-Match` and `If-None-Match` of a write.
#[derive(Clone)]
struct Conditions {
    if_match: Option<Condition>,
    if_none_match: Option<Condition>,
}

impl Conditions {
    fn of(headers: &HeaderMap) -> Conditions {
        Conditions {
            if_match: header_str(headers, "if-match").map(Condition::parse),
            if_none_match: header_str(headers, "if-none-match").map(Condition::parse),
        }
    }

    /// 412 unless the current state (`None`: no resource) meets the conditions.
    fn check(&self, current: Option<&Hash>) -> Result<(), Refusal> {
        let tag = current.map(etag);
        let failed = self
            .if_match
            .as_ref()
            .is_some_and(|c| !c.matches(tag.as_deref()))
            || self
                .if_none_match
                .as_ref()
                .is_some_and(|c| c.matches(tag.as_deref()));
        if failed {
            return Err(Refusal::plain(
                StatusCode::PRECONDITION_FAILED,
                "the resource changed (If-Match / If-None-Match)",
            ));
        }
        Ok(())
    }
}

fn uid_holder(
    view: &View<'_>,
    uids: &Uids,
    kind: &dyn CollectionKind,
    coll: &str,
    uid: &str,
) -> Result<Option<String>, Refusal> {
    let store = view.store();
    let dir = match store.find(&view.base_root(), coll).map_err(internal)? {
        Some((EntryKind::Dir, h)) => h,
        _ => return Ok(None),
    };
    let holder = uids
        .holder(store, kind, coll, &dir, uid)
        .map_err(|e| Refusal::plain(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    match holder {
        Some(name) if view.file(&format!("{coll}/{name}"))?.is_some() => Ok(Some(name)),
        _ => Ok(None),
    }
}

fn target_parent(path: &str) -> String {
    path.rsplit_once('/')
        .map_or(String::new(), |(d, _)| d.to_string())
}

fn propfind_response(props: &Props<'_>, res: &Resource, want: &Propfind) -> Result<String> {
    let mut stat = PropStat::default();
    let requested: Vec<Element> = match want {
        Propfind::Props(list) => list.clone(),
        Propfind::All | Propfind::Names => props.names(res)?.into_iter().map(named).collect(),
    };
    for prop in &requested {
        match (want, props.get(res, prop)?) {
            (Propfind::Names, Some(_)) => stat.found.push((prop.name.clone(), String::new())),
            (_, Some(v)) => stat.found.push((prop.name.clone(), v)),
            (_, None) => stat.other.push((prop.name.clone(), StatusCode::NOT_FOUND)),
        }
    }
    Ok(stat.response(&res.target().href()))
}

/// An element with no content, for a property name.
fn named(name: Name) -> Element {
    Element {
        name,
        attrs: Vec::new(),
        children: Vec::new(),
        text: String::new(),
    }
}

fn update_element(u: &Update) -> &Element {
    match u {
        Update::Set(e) | Update::Remove(e) => e,
    }
}

fn is_protected(kind: &dyn CollectionKind, name: &Name) -> bool {
    (name.ns == DAV && PROTECTED.contains(&name.local.as_str()))
        || name.is(xml::CALSERVER, "getctag")
        || kind.collection_properties().iter().any(|(n, _)| n == name)
}

/// The file changes of a PROPPATCH on the collection at `path`.
fn patch_changes(
    view: &View<'_>,
    kind: &dyn CollectionKind,
    path: &str,
    updates: &[Update],
) -> Result<Vec<Change>, Refusal> {
    let dead_path = format!("{path}/{DEAD_PROPS}");
    let mut dead = view
        .read(&dead_path)?
        .map(|b| crate::props::parse_dead(&String::from_utf8_lossy(&b)))
        .unwrap_or_default();
    let metadata = kind.metadata_files();
    let mut changes = Vec::new();
    for update in updates {
        let e = update_element(update);
        let file = metadata.iter().find(|m| m.property == e.name);
        match (update, file) {
            (Update::Set(_), Some(m)) => {
                changes.push(Change::Put(
                    format!("{path}/{}", m.file),
                    format!("{}\n", e.text.trim()).into_bytes(),
                ));
            }
            (Update::Remove(_), Some(m)) => {
                if view.file(&format!("{path}/{}", m.file))?.is_some() {
                    changes.push(Change::Remove(format!("{path}/{}", m.file)));
                }
            }
            (Update::Set(_), None) => {
                dead.insert(e.name.clone(), e.inner_xml());
            }
            (Update::Remove(_), None) => {
                dead.remove(&e.name);
            }
        }
    }
    changes.push(Change::Put(dead_path, render_dead(&dead).into_bytes()));
    Ok(changes)
}

/// The files a new collection starts with: its dead properties (always, so the folder
/// exists) and the metadata files of the properties set.
fn mkcol_files(kind: &dyn CollectionKind, path: &str, props: &[Element]) -> Vec<Change> {
    let metadata = kind.metadata_files();
    let mut dead = std::collections::BTreeMap::new();
    let mut changes = Vec::new();
    for p in props.iter().filter(|p| !p.is(DAV, "resourcetype")) {
        match metadata.iter().find(|m| m.property == p.name) {
            Some(m) => changes.push(Change::Put(
                format!("{path}/{}", m.file),
                format!("{}\n", p.text.trim()).into_bytes(),
            )),
            None => {
                dead.insert(p.name.clone(), p.inner_xml());
            }
        }
    }
    changes.push(Change::Put(
        format!("{path}/{DEAD_PROPS}"),
        render_dead(&dead).into_bytes(),
    ));
    changes
}

/// An extended MKCOL's resource type must be a collection, of this kind if it names one.
fn check_resourcetype(kind: &dyn CollectionKind, props: &[Element]) -> Result<(), Refusal> {
    let Some(rt) = props.iter().find(|p| p.is(DAV, "resourcetype")) else {
        return Ok(());
    };
    let ours = kind.resource_type();
    let ok = rt
        .children
        .iter()
        .all(|c| c.is(DAV, "collection") || c.name == ours);
    if ok {
        return Ok(());
    }
    Err(Refusal::condition(
        StatusCode::FORBIDDEN,
        Name::new(DAV, "valid-resourcetype"),
        format!("only collections of type {} can be made here", ours.local),
    ))
}

fn check_access(target: &Target, user: &str) -> Result<(), Refusal> {
    match target.owner() {
        Some(owner) if owner != user => Err(Refusal::plain(
            StatusCode::FORBIDDEN,
            "this belongs to another user",
        )),
        _ => Ok(()),
    }
}

/// A path deeper than any resource: 409 for methods that would create it (RFC 4918
/// §9.3.1, §9.7.1: the parent is missing), 404 otherwise.
fn unknown(method: &Method) -> Refusal {
    if method == Method::PUT || method.as_str() == "MKCOL" {
        Refusal::plain(StatusCode::CONFLICT, "the parent collection does not exist")
    } else {
        Refusal::plain(StatusCode::NOT_FOUND, "no such resource")
    }
}

fn well_known(service: &str) -> Result<Response, Refusal> {
    if service != "carddav" && service != "caldav" {
        return Err(Refusal::plain(StatusCode::NOT_FOUND, "no such resource"));
    }
    Ok(http::Response::builder()
        .status(StatusCode::MOVED_PERMANENTLY)
        .header(header::LOCATION, "/")
        .header(header::CONTENT_LENGTH, "0")
        .body(full(Bytes::new()))
        .expect("a valid response"))
}

fn unsupported_report() -> Refusal {
    Refusal::condition(
        StatusCode::FORBIDDEN,
        Name::new(DAV, "supported-report"),
        "this report is not supported here",
    )
}

fn bad_request(e: crate::error::Error) -> Refusal {
    Refusal::plain(StatusCode::BAD_REQUEST, e.to_string())
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn with_etag(mut resp: Response, tag: &str) -> Response {
    if let Ok(v) = http::HeaderValue::from_str(tag) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp
}

fn empty(status: StatusCode) -> Response {
    http::Response::builder()
        .status(status)
        .header(header::CONTENT_LENGTH, "0")
        .body(full(Bytes::new()))
        .expect("a valid response")
}

fn text(status: StatusCode, message: &str) -> Response {
    http::Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(full(Bytes::from(message.to_string())))
        .expect("a valid response")
}

/// The response for a refusal: a `DAV:error` body when it names a condition.
pub fn refused(r: &Refusal) -> Response {
    let mut resp = match &r.condition {
        Some(c) => http::Response::builder()
            .status(r.status)
            .header(header::CONTENT_TYPE, "application/xml; charset=utf-8")
            .body(full(Bytes::from(error_body(c, &r.message))))
            .expect("a valid response"),
        None => text(r.status, &format!("{}\n", r.message)),
    };
    if r.status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Basic realm=\"Kith\", charset=\"UTF-8\""),
        );
    }
    resp
}

fn multi_status(reply: Reply) -> Response {
    let body = stream(reply.chunks);
    let (status, content_type) = match reply.content_type {
        Some(t) => (StatusCode::OK, t),
        None => (StatusCode::MULTI_STATUS, "application/xml; charset=utf-8"),
    };
    http::Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .body(body)
        .expect("a valid response")
}

fn single_multistatus(response: String) -> Response {
    let body = format!(
        "{}{}{}",
        multistatus::open(),
        response,
        multistatus::close(None)
    );
    http::Response::builder()
        .status(StatusCode::MULTI_STATUS)
        .header(header::CONTENT_TYPE, "application/xml; charset=utf-8")
        .body(full(Bytes::from(body)))
        .expect("a valid response")
}
