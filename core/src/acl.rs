//! Access control lists and authentication, with ZooKeeper's exact semantics.
//!
//! ZooKeeper ships two authentication providers that every server has, `digest` and `ip`,
//! plus three pseudo-schemes the server itself understands: `world:anyone` (everybody),
//! `auth` (expanded at create/setACL time to the caller's authenticated identities) and
//! `super` (an identity that passes every check). This module implements all of them as
//! pure functions over [`Acl`] and [`Id`] values:
//!
//! - [`connection_ids`] and [`authenticate`] build a connection's identities (its `authInfo`);
//!   [`add_auth_ids`] merges new identities into that set, bounded by [`AUTH_IDS_MAX`].
//! - [`check_acl`] decides whether a set of identities may use a permission on a znode.
//! - [`fixup_acl`] validates and expands the ACL a client sends with create or setACL.
//! - [`mask_digest_ids`] and [`client_infos`] shape the replies of getACL and whoAmI.
//!
//! Nothing here reads configuration from the environment: the superDigest comes in through
//! [`AuthConfig`], and a client's address comes in as a plain [`IpAddr`] value.

use core::net::IpAddr;
use std::collections::BTreeSet;

use base64::Engine as _;
use sha1::{Digest as _, Sha1};

use crate::proto::{perms, Acl, ClientInfo, Id};
use crate::{ErrorCode, ZkResult};

/// The scheme of the identity that stands for every client (`world:anyone`).
pub const SCHEME_WORLD: &str = "world";
/// The only id the `world` scheme has.
pub const ID_ANYONE: &str = "anyone";
/// The pseudo-scheme that [`fixup_acl`] replaces with the caller's authenticated identities.
pub const SCHEME_AUTH: &str = "auth";
/// The username/password scheme: ids are `user:base64(sha1(user:password))`.
pub const SCHEME_DIGEST: &str = "digest";
/// The client-address scheme: ids are addresses, ACL entries addresses or CIDR blocks.
pub const SCHEME_IP: &str = "ip";
/// The scheme of the superuser identity, which passes every ACL check.
pub const SCHEME_SUPER: &str = "super";
/// The scheme of a TLS client certificate's subject (ZooKeeper's X509AuthenticationProvider).
pub const SCHEME_X509: &str = "x509";
/// The scheme of a SASL login's name (ZooKeeper's SASLAuthenticationProvider).
pub const SCHEME_SASL: &str = "sasl";

/// The most identities one connection may hold. ZooKeeper keeps an unbounded set; zkd bounds
/// it so a client that keeps adding new credentials cannot grow a connection without limit.
/// A connection holds one `ip` id, and a digest login adds one or two ids, so 64 leaves room
/// for far more logins than any real client performs.
pub const AUTH_IDS_MAX: usize = 64;

/// The `world:anyone` identity (ZooKeeper's `ZooDefs.Ids.ANYONE_ID_UNSAFE`).
pub fn anyone_id_unsafe() -> Id {
    Id { scheme: SCHEME_WORLD.to_string(), id: ID_ANYONE.to_string() }
}

/// The `auth:` identity that [`fixup_acl`] expands to the creator's identities
/// (ZooKeeper's `ZooDefs.Ids.AUTH_IDS`).
pub fn auth_ids() -> Id {
    Id { scheme: SCHEME_AUTH.to_string(), id: String::new() }
}

/// An ACL that lets anyone do anything (`ZooDefs.Ids.OPEN_ACL_UNSAFE`): world:anyone with
/// every permission. It is the ACL of `/` and `/zookeeper` on a fresh tree.
pub fn open_acl_unsafe() -> Vec<Acl> {
    vec![Acl { perms: perms::ALL, id: anyone_id_unsafe() }]
}

/// An ACL that gives every permission to the creator's authenticated identities
/// (`ZooDefs.Ids.CREATOR_ALL_ACL`). It only makes sense as input to [`fixup_acl`], which
/// expands the `auth` entry; a connection with no digest identity gets InvalidACL for it.
pub fn creator_all_acl() -> Vec<Acl> {
    vec![Acl { perms: perms::ALL, id: auth_ids() }]
}

/// An ACL that lets anyone read and nothing else (`ZooDefs.Ids.READ_ACL_UNSAFE`). It is the
/// ACL of `/zookeeper/config`.
pub fn read_acl_unsafe() -> Vec<Acl> {
    vec![Acl { perms: perms::READ, id: anyone_id_unsafe() }]
}

/// The server's authentication settings, as zoo.cfg and system properties give them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthConfig {
    /// ZooKeeper's `zookeeper.DigestAuthenticationProvider.superDigest`: a digest id of the
    /// form `super:<base64 sha1>` (as [`generate_digest`] prints it). A connection whose
    /// digest login produces exactly this id also becomes the superuser. `None` disables it.
    pub super_digest: Option<String>,
    /// SASL (DIGEST-MD5) from a JAAS `Server` section; `None`: a SASL token is answered with
    /// no token, as ZooKeeper answers it without a login.
    pub sasl: Option<crate::sasl::SaslConfig>,
    /// A secret the DIGEST-MD5 nonces are derived from (random in production, a seed's in
    /// the simulator).
    pub nonce_secret: u128,
    /// `enforce.auth.enabled` with `enforce.auth.schemes` (or `sessionRequireClientSASLAuth`:
    /// `sasl`): a connection must hold an identity of one of these schemes before any request
    /// but auth and sasl; otherwise it is answered SessionClosedRequireSaslAuth and closed.
    pub enforce_schemes: Option<Vec<String>>,
}

/// The authentication providers a server runs beyond the two every server has (`digest`,
/// `ip`): an ACL entry of their scheme is valid only when the provider is on, as in
/// ZooKeeper, where an unregistered scheme is InvalidACL.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Providers {
    /// `x509`: identities from TLS client certificates.
    pub x509: bool,
    /// `sasl`: identities from SASL logins.
    pub sasl: bool,
}

/// Turns `user:password` into the digest id `user:base64(sha1(user:password))`, exactly as
/// ZooKeeper's `DigestAuthenticationProvider.generateDigest` does.
///
/// The whole text is hashed, so a password may itself contain colons; the user is the part
/// before the first colon. Text without any colon is accepted as ZooKeeper accepts it: the
/// user is then the whole text and the hash covers the whole text.
pub fn generate_digest(user_password: &str) -> String {
    let user = user_password.split_once(':').map_or(user_password, |(user, _)| user);
    let hash = Sha1::digest(user_password.as_bytes());
    format!("{user}:{}", base64::engine::general_purpose::STANDARD.encode(hash))
}

/// The identities an auth packet (`addauth scheme auth`) adds to a connection, or
/// AuthFailed, in which case ZooKeeper replies AuthFailed and closes the connection.
///
/// - `digest`: the auth bytes are read as text (invalid UTF-8 becomes U+FFFD, as Java's
///   `new String(bytes)` does) and never rejected, whatever their shape: the connection gets
///   `digest:<generate_digest(text)>`, preceded by `super:` (empty id) when that digest
///   equals [`AuthConfig::super_digest`].
/// - `ip`: the auth bytes are ignored and the connection gets `ip:<its own address>` again;
///   with no known client address this fails, as ZooKeeper's provider would.
/// - any other scheme (including `world`, `auth` and `super`) has no provider: AuthFailed.
pub fn authenticate(config: &AuthConfig, scheme: &str, auth: &[u8], client_ip: Option<IpAddr>) -> ZkResult<Vec<Id>> {
    match scheme {
        SCHEME_DIGEST => {
            let text = String::from_utf8_lossy(auth);
            let digest = generate_digest(&text);
            let mut ids = Vec::with_capacity(2);
            if config.super_digest.as_deref() == Some(digest.as_str()) {
                ids.push(Id { scheme: SCHEME_SUPER.to_string(), id: String::new() });
            }
            ids.push(Id { scheme: SCHEME_DIGEST.to_string(), id: digest });
            Ok(ids)
        }
        SCHEME_IP => client_ip.map(|addr| vec![ip_id(addr)]).ok_or(ErrorCode::AuthFailed),
        _ => Err(ErrorCode::AuthFailed),
    }
}

/// The `ip:` identity of a client address, spelled as Java's `InetAddress.getHostAddress`
/// spells it, since that text is what ZooKeeper stores and reports: IPv4 in dotted decimal,
/// IPv6 as eight lowercase hex groups without `::` compression (`0:0:0:0:0:0:0:1`), and an
/// IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, what a dual-stack listener reports for an
/// IPv4 client) as the plain IPv4 address, because Java converts those to `Inet4Address`.
pub fn ip_id(addr: IpAddr) -> Id {
    let text = match addr {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.segments().iter().map(|segment| format!("{segment:x}")).collect::<Vec<_>>().join(":"),
        },
    };
    Id { scheme: SCHEME_IP.to_string(), id: text }
}

/// The identities a connection has before any auth packet: `ip:<client address>`, which
/// ZooKeeper adds when it accepts the socket. A connection whose address is unknown (a
/// simulated client without one) starts with no identity at all.
pub fn connection_ids(client_ip: Option<IpAddr>) -> Vec<Id> {
    client_ip.map(ip_id).into_iter().collect()
}

/// Adds identities to a connection's set, skipping those it already holds, as ZooKeeper's
/// `ServerCnxn.addAuthInfo` does (its set ignores repeats). The order is insertion order,
/// which makes the `auth` expansion of [`fixup_acl`] deterministic.
///
/// Fails with AuthFailed, adding nothing, when the set would exceed [`AUTH_IDS_MAX`].
pub fn add_auth_ids(conn_ids: &mut Vec<Id>, new_ids: Vec<Id>) -> ZkResult<()> {
    let mut fresh: Vec<Id> = Vec::with_capacity(new_ids.len());
    for id in new_ids {
        if !conn_ids.contains(&id) && !fresh.contains(&id) {
            fresh.push(id);
        }
    }
    if conn_ids.len() + fresh.len() > AUTH_IDS_MAX {
        return Err(ErrorCode::AuthFailed);
    }
    conn_ids.extend(fresh);
    Ok(())
}

/// Decides whether a client holding `ids` may use `perm` on a znode whose ACL is `acl`,
/// with ZooKeeper's `ZooKeeperServer.checkACL` rules, in this order:
///
/// 1. an empty ACL allows everything;
/// 2. any identity of scheme `super` allows everything;
/// 3. otherwise an entry allows the request when its permissions share a bit with `perm`
///    (so asking for `READ | ADMIN` passes with either) and its id is `world:anyone`, or the
///    client holds an id of the same scheme that the scheme's provider matches: `digest`
///    by exact text, `ip` by address or CIDR block (IPv4 and IPv6). Entries of any other
///    scheme (`auth`, `super`, `world` with another id, unknown schemes) never match.
///
/// Denial is NoAuth.
pub fn check_acl(acl: &[Acl], perm: i32, ids: &[Id]) -> ZkResult<()> {
    if acl.is_empty() || ids.iter().any(|id| id.scheme == SCHEME_SUPER) {
        return Ok(());
    }
    for entry in acl {
        if entry.perms & perm == 0 {
            continue;
        }
        if entry.id.scheme == SCHEME_WORLD && entry.id.id == ID_ANYONE {
            return Ok(());
        }
        let allowed = match entry.id.scheme.as_str() {
            SCHEME_DIGEST => ids.iter().any(|id| id.scheme == SCHEME_DIGEST && id.id == entry.id.id),
            SCHEME_IP => ids.iter().any(|id| id.scheme == SCHEME_IP && ip_matches(&id.id, &entry.id.id)),
            SCHEME_X509 | SCHEME_SASL => ids.iter().any(|id| id.scheme == entry.id.scheme && id.id == entry.id.id),
            _ => false,
        };
        if allowed {
            return Ok(());
        }
    }
    Err(ErrorCode::NoAuth)
}

/// Validates and expands the ACL of a create or setACL request, as ZooKeeper's
/// `PrepRequestProcessor.fixupACL` does; `ids` are the requesting connection's identities.
///
/// - Exact duplicate entries are dropped, keeping the first of each, before anything else;
///   an ACL that is then empty (or was null on the wire) is InvalidACL.
/// - `world:anyone` is kept; `world` with any other id is InvalidACL.
/// - An `auth` entry (whatever its id) is replaced by one entry with its permissions for
///   every identity in `ids` whose scheme's provider authenticates, which among the built-in
///   schemes is only `digest` (`ip` does not, `super` has no provider). With none it is
///   InvalidACL. Entries this expansion produces are not de-duplicated again.
/// - `digest` ids must split on `:` into exactly two parts (Java `split` rules, see
///   [`is_valid_acl_id`]), `ip` ids must be an address or CIDR block; anything else,
///   including `super` and unknown schemes, is InvalidACL.
///
/// Permission bits are not checked at all: ZooKeeper stores any 32-bit mask, even 0.
pub fn fixup_acl(providers: Providers, ids: &[Id], acl: &[Acl]) -> ZkResult<Vec<Acl>> {
    // A set of the entries seen so far keeps this O(n log n) on a hostile, huge list
    // (ZooKeeper's list scan is quadratic); the output order is still first occurrence.
    let mut seen: BTreeSet<&Acl> = BTreeSet::new();
    let unique: Vec<&Acl> = acl.iter().filter(|entry| seen.insert(*entry)).collect();
    if unique.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut fixed = Vec::with_capacity(unique.len());
    for entry in unique {
        if entry.id.scheme == SCHEME_WORLD && entry.id.id == ID_ANYONE {
            fixed.push(entry.clone());
        } else if entry.id.scheme == SCHEME_AUTH {
            let before = fixed.len();
            fixed.extend(
                ids.iter()
                    .filter(|id| scheme_is_authenticated(&id.scheme))
                    .map(|id| Acl { perms: entry.perms, id: id.clone() }),
            );
            if fixed.len() == before {
                return Err(ErrorCode::InvalidAcl);
            }
        } else if is_valid_acl_id(providers, &entry.id) {
            fixed.push(entry.clone());
        } else {
            return Err(ErrorCode::InvalidAcl);
        }
    }
    Ok(fixed)
}

/// Whether a provider accepts `id` as an ACL entry (ZooKeeper's `AuthenticationProvider.isValid`).
/// Only the two providers every server has can say yes:
///
/// - `digest`: the id splits on `:` into exactly two parts under Java's `String.split`
///   rules, which drop trailing empty parts: `user:hash` and even `:hash` or `user:hash:`
///   pass, while `user`, `user:` and `a:b:c` do not.
/// - `ip`: an IPv4 address (four dot-separated decimal numbers 0..=255), or an IPv6 address
///   in colon-hex form (with at most one `::`, no embedded IPv4, no zone), optionally
///   followed by `/bits` with bits between 0 and the address width.
///
/// The pseudo-schemes `world`, `auth` and `super` are not providers, so this says no to them.
pub fn is_valid_acl_id(providers: Providers, id: &Id) -> bool {
    match id.scheme.as_str() {
        SCHEME_DIGEST => java_split(&id.id, ':').len() == 2,
        SCHEME_IP => parse_ip_expr(&id.id).is_some(),
        SCHEME_X509 => providers.x509 && is_distinguished_name(&id.id),
        SCHEME_SASL => providers.sasl && is_kerberos_name(&id.id),
        _ => false,
    }
}

/// Whether a name parses as ZooKeeper's KerberosName does: a name with `@` must be
/// `service[/host]@realm` (one `@`, at most one `/` before it); a name without `@` is a plain
/// service name, always valid.
fn is_kerberos_name(name: &str) -> bool {
    let Some((before, realm)) = name.split_once('@') else { return true };
    !realm.contains(['@', '/']) && before.matches('/').count() <= 1
}

/// Whether text reads as a distinguished name, `type=value` pairs separated by unescaped
/// commas (or `+` inside one RDN), which is what an X500Principal accepts for an x509 ACL
/// id. Values are not checked further.
fn is_distinguished_name(text: &str) -> bool {
    let mut parts = Vec::new();
    let (mut start, mut escaped) = (0, false);
    for (at, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ',' | '+' | ';' => {
                parts.push(&text[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    !text.trim().is_empty()
        && parts.iter().all(|part| part.split_once('=').is_some_and(|(kind, _)| !kind.trim().is_empty()))
}

/// The ACL a getACL caller without ADMIN permission sees: every `digest` entry has its id
/// cut after the first colon and replaced by `x` (`user:hash` becomes `user:x`), so the
/// password hashes stay hidden. Other entries are unchanged.
///
/// This mirrors ZooKeeper's `id.replaceAll(":.*", ":x")` to the letter, including its
/// regular-expression quirk that `.` stops at a line terminator, so each line of a
/// multi-line id is masked on its own.
pub fn mask_digest_ids(acl: &[Acl]) -> Vec<Acl> {
    acl.iter()
        .map(|entry| {
            if entry.id.scheme == SCHEME_DIGEST {
                Acl {
                    perms: entry.perms,
                    id: Id { scheme: entry.id.scheme.clone(), id: mask_after_colons(&entry.id.id) },
                }
            } else {
                entry.clone()
            }
        })
        .collect()
}

/// The whoAmI reply for a connection holding `ids` (ZooKeeper's `AuthUtil.getClientInfos`):
/// each identity's scheme and the user name its provider reports. `digest` reports the part
/// before the first colon, `ip` the address itself, and schemes without a provider (`super`)
/// an empty user.
///
/// ZooKeeper keeps a connection's identities in a `ConcurrentHashMap` key set, so whoAmI
/// lists them in that map's iteration order, not in the order they were added; zkd lists
/// them in the same order (see [`java_hash_set_order`]) so clients see the same reply.
pub fn client_infos(ids: &[Id]) -> Vec<ClientInfo> {
    java_hash_set_order(ids)
        .into_iter()
        .map(|id| {
            let user = match id.scheme.as_str() {
                SCHEME_DIGEST => java_split(&id.id, ':').first().map_or_else(String::new, |user| (*user).to_string()),
                SCHEME_IP => id.id.clone(),
                _ => String::new(),
            };
            ClientInfo { auth_scheme: id.scheme.clone(), user }
        })
        .collect()
}

/// Java's `String.hashCode` (over UTF-16 code units).
fn java_string_hash(text: &str) -> i32 {
    text.encode_utf16().fold(0i32, |hash, unit| hash.wrapping_mul(31).wrapping_add(i32::from(unit)))
}

/// The `hashCode` jute generates for `Id`: `37 * (37 * 17 + scheme) + id`.
fn java_id_hash(id: &Id) -> i32 {
    let result = 37i32.wrapping_mul(17).wrapping_add(java_string_hash(&id.scheme));
    result.wrapping_mul(37).wrapping_add(java_string_hash(&id.id))
}

/// The order a `ConcurrentHashMap` (default capacity, load factor 0.75) iterates `ids`
/// inserted in the given order: by bucket (`spread(hash) & (capacity - 1)`), then by
/// insertion within a bucket. The table doubles whenever the count passes three quarters
/// of its capacity. Within one bucket the order is insertion order, which is exact until the
/// table resizes (past 12 identities; zkd allows 64).
pub fn java_hash_set_order(ids: &[Id]) -> Vec<&Id> {
    let mut capacity = 16usize;
    while ids.len() > capacity - capacity / 4 {
        capacity *= 2;
    }
    let spread = |hash: i32| ((hash ^ ((hash as u32) >> 16) as i32) & 0x7fff_ffff) as usize;
    let mut ordered: Vec<(usize, usize, &Id)> =
        ids.iter().enumerate().map(|(index, id)| (spread(java_id_hash(id)) & (capacity - 1), index, id)).collect();
    ordered.sort_unstable_by_key(|(bucket, index, _)| (*bucket, *index));
    ordered.into_iter().map(|(_, _, id)| id).collect()
}

/// Whether identities of `scheme` count as authenticated for the `auth` expansion (the
/// provider's `isAuthenticated`): true for `digest` only among the built-in providers.
fn scheme_is_authenticated(scheme: &str) -> bool {
    scheme == SCHEME_DIGEST || scheme == SCHEME_X509 || scheme == SCHEME_SASL
}

/// Java's `String.split(String.valueOf(sep))` with its default limit: split on every
/// separator, then drop trailing empty parts. Text without the separator is one part, even
/// when empty; text made only of separators gives no parts at all.
fn java_split(text: &str, sep: char) -> Vec<&str> {
    if !text.contains(sep) {
        return vec![text];
    }
    let mut parts: Vec<&str> = text.split(sep).collect();
    while parts.last() == Some(&"") {
        parts.pop();
    }
    parts
}

/// Whether `c` ends a line for a Java regular expression's `.` (outside UNIX_LINES mode).
fn is_java_line_terminator(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// Replaces each colon and the rest of its line with `:x`, as `replaceAll(":.*", ":x")`.
fn mask_after_colons(text: &str) -> String {
    let mut masked = String::with_capacity(text.len());
    let mut in_masked_run = false;
    for c in text.chars() {
        if in_masked_run {
            if is_java_line_terminator(c) {
                in_masked_run = false;
                masked.push(c);
            }
        } else if c == ':' {
            masked.push_str(":x");
            in_masked_run = true;
        } else {
            masked.push(c);
        }
    }
    masked
}

/// An address as bytes: 4 for IPv4, 16 for IPv6.
type AddrBytes = Vec<u8>;

/// Parses text as ZooKeeper's IP provider does (`addr2Bytes`): text with a colon is IPv6,
/// else text with a dot is IPv4, else nothing.
fn parse_ip_addr(text: &str) -> Option<AddrBytes> {
    if text.contains(':') {
        parse_ipv6(text)
    } else if text.contains('.') {
        parse_ipv4(text)
    } else {
        None
    }
}

/// Four dot-separated numbers, each 0..=255. Like Java's `Integer.parseInt`, a number may
/// carry a sign and leading zeros (`+1`, `-0`, `010` is ten).
fn parse_ipv4(text: &str) -> Option<AddrBytes> {
    let parts: Vec<&str> = text.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    parts
        .iter()
        .map(|part| part.parse::<i32>().ok().filter(|value| (0..=255).contains(value)).map(|value| value as u8))
        .collect()
}

/// Colon-hex IPv6: eight groups, or fewer around a single `::` that stands for at least one
/// zero group. Each group is one to four characters parsed as a (possibly signed) hex int.
fn parse_ipv6(text: &str) -> Option<AddrBytes> {
    const GROUPS: usize = 8;
    let halves: Vec<&str> = text.split("::").collect();
    let (head, tail): (Vec<&str>, Vec<&str>) = match halves.as_slice() {
        [whole] => {
            let groups: Vec<&str> = whole.split(':').collect();
            if groups.len() != GROUPS {
                return None;
            }
            (groups, Vec::new())
        }
        [before, after] => {
            let head: Vec<&str> = if before.is_empty() { Vec::new() } else { before.split(':').collect() };
            let tail: Vec<&str> = if after.is_empty() { Vec::new() } else { after.split(':').collect() };
            if head.len() + tail.len() >= GROUPS {
                return None;
            }
            (head, tail)
        }
        _ => return None,
    };
    let mut bytes = vec![0u8; 2 * GROUPS];
    let tail_start = 2 * (GROUPS - tail.len());
    for (index, group) in head.iter().enumerate() {
        write_ipv6_group(&mut bytes, 2 * index, group)?;
    }
    for (index, group) in tail.iter().enumerate() {
        write_ipv6_group(&mut bytes, tail_start + 2 * index, group)?;
    }
    Some(bytes)
}

/// Stores one IPv6 group's two bytes at `offset`, keeping the low 16 bits of the parsed int.
fn write_ipv6_group(bytes: &mut [u8], offset: usize, group: &str) -> Option<()> {
    if group.is_empty() || group.len() > 4 {
        return None;
    }
    let value = i32::from_str_radix(group, 16).ok()?;
    bytes[offset] = ((value >> 8) & 0xff) as u8;
    bytes[offset + 1] = (value & 0xff) as u8;
    Some(())
}

/// Parses an `ip` ACL expression, `address` or `address/bits`, into the address bytes and
/// the prefix length (the full width when no `/bits` is given).
fn parse_ip_expr(expr: &str) -> Option<(AddrBytes, usize)> {
    let (addr_text, bits_text) = match expr.split_once('/') {
        Some((addr, bits)) => (addr, Some(bits)),
        None => (expr, None),
    };
    let addr = parse_ip_addr(addr_text)?;
    let width = addr.len() * 8;
    let bits = match bits_text {
        None => width,
        Some(text) => {
            let bits = text.parse::<i32>().ok()?;
            usize::try_from(bits).ok().filter(|bits| *bits <= width)?
        }
    };
    Some((addr, bits))
}

/// Clears every bit of `bytes` after the first `bits`.
fn mask_to_prefix(bytes: &mut [u8], bits: usize) {
    for (index, byte) in bytes.iter_mut().enumerate() {
        let keep = bits.saturating_sub(index * 8).min(8);
        *byte &= !(0xffu16 >> keep) as u8;
    }
}

/// The `ip` provider's `matches`: the client's address `id` lies inside the block
/// `acl_expr`. Addresses of different families never match.
fn ip_matches(id: &str, acl_expr: &str) -> bool {
    let Some((mut acl_addr, bits)) = parse_ip_expr(acl_expr) else {
        return false;
    };
    let Some(mut client_addr) = parse_ip_addr(id) else {
        return false;
    };
    if client_addr.len() != acl_addr.len() {
        return false;
    }
    mask_to_prefix(&mut acl_addr, bits);
    mask_to_prefix(&mut client_addr, bits);
    acl_addr == client_addr
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded from Apache ZooKeeper 3.8.0: `addauth digest alice:secret` then `whoami` over
    /// loopback lists the digest before the ip, although the ip was added first.
    #[test]
    fn whoami_lists_identities_in_java_hash_set_order() {
        let ip = Id { scheme: "ip".into(), id: "127.0.0.1".into() };
        let digest = Id { scheme: "digest".into(), id: "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=".into() };
        let infos = client_infos(&[ip.clone(), digest.clone()]);
        let schemes: Vec<&str> = infos.iter().map(|info| info.auth_scheme.as_str()).collect();
        assert_eq!(schemes, ["digest", "ip"]);
        assert_eq!(java_string_hash("ip"), 3367);
        assert_eq!(java_string_hash(""), 0);
        // The order does not depend on the order of insertion across buckets.
        let infos = client_infos(&[digest, ip]);
        assert_eq!(infos[0].auth_scheme, "digest");
    }

    use core::net::{Ipv4Addr, Ipv6Addr};

    fn id(scheme: &str, id: &str) -> Id {
        Id { scheme: scheme.to_string(), id: id.to_string() }
    }

    fn acl(perms: i32, scheme: &str, id_text: &str) -> Acl {
        Acl { perms, id: id(scheme, id_text) }
    }

    /// The digest id of `user:password`, from `printf user:password | openssl sha1 -binary | base64`.
    const USER_DIGEST: &str = "user:tpUq/4Pn5A64fVZyQ0gOJ8ZWqkY=";
    /// The digest id of `super:test`, computed the same way.
    const SUPER_TEST_DIGEST: &str = "super:D/InIHSb7yEEbrWz8b9l71RjZJU=";

    fn super_config() -> AuthConfig {
        AuthConfig { super_digest: Some(SUPER_TEST_DIGEST.to_string()), ..AuthConfig::default() }
    }

    #[test]
    fn generate_digest_matches_openssl_vectors() {
        assert_eq!(generate_digest("user:password"), USER_DIGEST);
        assert_eq!(generate_digest("super:test"), SUPER_TEST_DIGEST);
        // The password keeps its colons and is hashed whole; the user ends at the first colon.
        assert_eq!(generate_digest("bob:secret:with:colons"), "bob:19SUbgVpClnpXew/2fLDw5Dt1fY=");
        // Text without a colon: the whole text is both user and hashed input.
        assert_eq!(generate_digest("nocolon"), "nocolon:Ra+cHr2ZoHvBjtNArFGNGlVie4g=");
        assert_eq!(generate_digest(""), ":2jmj7l5rSw0yVb/vlWAYkK/YBwk=");
        assert_eq!(generate_digest("alice:"), "alice:VvKt9/iw7kxS1milYay2cPWBnRo=");
    }

    #[test]
    fn digest_auth_adds_the_digest_id() {
        let ids = authenticate(&AuthConfig::default(), "digest", b"user:password", None).unwrap();
        assert_eq!(ids, vec![id("digest", USER_DIGEST)]);
    }

    #[test]
    fn digest_auth_matching_super_digest_adds_super_first() {
        // DigestAuthenticationProvider adds Id("super", "") before the digest id.
        let ids = authenticate(&super_config(), "digest", b"super:test", None).unwrap();
        assert_eq!(ids, vec![id("super", ""), id("digest", SUPER_TEST_DIGEST)]);
        // A wrong password is still a successful login, just not as super.
        let ids = authenticate(&super_config(), "digest", b"super:wrong", None).unwrap();
        assert_eq!(ids.len(), 1);
        assert_eq!(ids[0].scheme, "digest");
        assert!(ids[0].id.starts_with("super:"));
    }

    #[test]
    fn digest_auth_never_rejects_malformed_input() {
        // ZooKeeper does not validate the shape of digest auth data.
        let ids = authenticate(&AuthConfig::default(), "digest", b"nocolon", None).unwrap();
        assert_eq!(ids, vec![id("digest", "nocolon:Ra+cHr2ZoHvBjtNArFGNGlVie4g=")]);
        let ids = authenticate(&AuthConfig::default(), "digest", b"", None).unwrap();
        assert_eq!(ids, vec![id("digest", ":2jmj7l5rSw0yVb/vlWAYkK/YBwk=")]);
        // Invalid UTF-8 turns into U+FFFD, as Java's new String(bytes) does; the digest is
        // sha1 of "a" + EF BF BD (`printf 'a\xef\xbf\xbd' | openssl sha1 -binary | base64`).
        let ids = authenticate(&AuthConfig::default(), "digest", b"a\xff", None).unwrap();
        assert_eq!(ids, vec![id("digest", "a\u{fffd}:/1cKdtpG4H3pnIzMq12HKslg8z0=")]);
    }

    #[test]
    fn ip_auth_ignores_its_data_and_adds_the_client_address() {
        let addr = IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3));
        let ids = authenticate(&AuthConfig::default(), "ip", b"ignored", Some(addr)).unwrap();
        assert_eq!(ids, vec![id("ip", "10.1.2.3")]);
        assert_eq!(authenticate(&AuthConfig::default(), "ip", b"10.1.2.3", None), Err(ErrorCode::AuthFailed));
    }

    #[test]
    fn schemes_without_a_provider_fail_authentication() {
        for scheme in ["world", "auth", "super", "sasl", "x509", "", "Digest"] {
            assert_eq!(
                authenticate(&super_config(), scheme, b"super:test", None),
                Err(ErrorCode::AuthFailed),
                "scheme {scheme:?}"
            );
        }
    }

    #[test]
    fn connection_ids_spell_addresses_like_java() {
        assert_eq!(connection_ids(Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)))), vec![id("ip", "127.0.0.1")]);
        // Inet6Address.getHostAddress never compresses zero groups.
        assert_eq!(connection_ids(Some(IpAddr::V6(Ipv6Addr::LOCALHOST))), vec![id("ip", "0:0:0:0:0:0:0:1")]);
        let addr: Ipv6Addr = "2001:db8::ff00:42:8329".parse().unwrap();
        assert_eq!(connection_ids(Some(IpAddr::V6(addr))), vec![id("ip", "2001:db8:0:0:0:ff00:42:8329")]);
        // Java turns IPv4-mapped addresses into Inet4Address.
        let mapped = Ipv4Addr::new(10, 1, 2, 3).to_ipv6_mapped();
        assert_eq!(connection_ids(Some(IpAddr::V6(mapped))), vec![id("ip", "10.1.2.3")]);
        assert_eq!(connection_ids(None), Vec::<Id>::new());
    }

    #[test]
    fn add_auth_ids_keeps_a_set_in_insertion_order() {
        let mut ids = vec![id("ip", "10.0.0.1")];
        add_auth_ids(&mut ids, vec![id("digest", USER_DIGEST), id("ip", "10.0.0.1")]).unwrap();
        add_auth_ids(&mut ids, vec![id("digest", USER_DIGEST)]).unwrap();
        assert_eq!(ids, vec![id("ip", "10.0.0.1"), id("digest", USER_DIGEST)]);
    }

    #[test]
    fn add_auth_ids_refuses_beyond_the_limit() {
        let mut ids: Vec<Id> = (0..AUTH_IDS_MAX - 1).map(|n| id("digest", &format!("u{n}:h"))).collect();
        add_auth_ids(&mut ids, vec![id("digest", "last:h")]).unwrap();
        assert_eq!(ids.len(), AUTH_IDS_MAX);
        // A repeat adds nothing, so it is still fine at the limit.
        add_auth_ids(&mut ids, vec![id("digest", "last:h")]).unwrap();
        assert_eq!(add_auth_ids(&mut ids, vec![id("digest", "one-more:h")]), Err(ErrorCode::AuthFailed));
        assert_eq!(ids.len(), AUTH_IDS_MAX);
    }

    #[test]
    fn empty_acl_allows_everything() {
        assert_eq!(check_acl(&[], perms::ADMIN, &[]), Ok(()));
    }

    #[test]
    fn super_passes_every_check() {
        let locked = vec![acl(perms::READ, "digest", "someone:else")];
        assert_eq!(check_acl(&locked, perms::ADMIN, &[]), Err(ErrorCode::NoAuth));
        // Only the scheme matters: checkACL returns as soon as any id's scheme is "super".
        assert_eq!(check_acl(&locked, perms::ADMIN, &[id("super", "")]), Ok(()));
        assert_eq!(check_acl(&locked, perms::ADMIN, &[id("super", "whatever")]), Ok(()));
    }

    #[test]
    fn world_anyone_grants_its_perms_to_everybody() {
        let read_only = read_acl_unsafe();
        assert_eq!(check_acl(&read_only, perms::READ, &[]), Ok(()));
        assert_eq!(check_acl(&read_only, perms::WRITE, &[]), Err(ErrorCode::NoAuth));
        assert_eq!(check_acl(&open_acl_unsafe(), perms::ADMIN, &[]), Ok(()));
        // world with another id has no provider and never matches.
        let odd = vec![acl(perms::ALL, "world", "everyone")];
        assert_eq!(check_acl(&odd, perms::READ, &[id("world", "everyone")]), Err(ErrorCode::NoAuth));
    }

    #[test]
    fn perm_check_needs_only_one_shared_bit() {
        // getACL asks for READ | ADMIN and passes with either.
        let read_only = vec![acl(perms::READ, "digest", USER_DIGEST)];
        let me = [id("digest", USER_DIGEST)];
        assert_eq!(check_acl(&read_only, perms::READ | perms::ADMIN, &me), Ok(()));
        assert_eq!(check_acl(&read_only, perms::ADMIN, &me), Err(ErrorCode::NoAuth));
    }

    #[test]
    fn digest_matches_exactly() {
        let entry = vec![acl(perms::ALL, "digest", USER_DIGEST)];
        assert_eq!(check_acl(&entry, perms::READ, &[id("digest", USER_DIGEST)]), Ok(()));
        assert_eq!(check_acl(&entry, perms::READ, &[id("digest", "user:x")]), Err(ErrorCode::NoAuth));
        // Same text under another scheme does not count.
        assert_eq!(check_acl(&entry, perms::READ, &[id("ip", USER_DIGEST)]), Err(ErrorCode::NoAuth));
    }

    #[test]
    fn ip_matches_addresses_and_cidr_blocks() {
        let client = [id("ip", "10.1.2.3")];
        let allows = |expr: &str| check_acl(&[acl(perms::READ, "ip", expr)], perms::READ, &client);
        assert_eq!(allows("10.1.2.3"), Ok(()));
        assert_eq!(allows("10.1.2.4"), Err(ErrorCode::NoAuth));
        assert_eq!(allows("10.0.0.0/8"), Ok(()));
        assert_eq!(allows("10.1.2.0/24"), Ok(()));
        assert_eq!(allows("10.1.2.2/31"), Ok(()));
        assert_eq!(allows("10.1.2.4/31"), Err(ErrorCode::NoAuth));
        assert_eq!(allows("11.0.0.0/8"), Err(ErrorCode::NoAuth));
        assert_eq!(allows("0.0.0.0/0"), Ok(()));
        assert_eq!(allows("10.1.2.3/32"), Ok(()));
        // Out-of-range or malformed prefix lengths never match.
        assert_eq!(allows("10.1.2.3/33"), Err(ErrorCode::NoAuth));
        assert_eq!(allows("10.1.2.3/-1"), Err(ErrorCode::NoAuth));
        assert_eq!(allows("10.1.2.3/"), Err(ErrorCode::NoAuth));
        // Java's Integer.parseInt accepts a sign and leading zeros.
        assert_eq!(allows("010.1.2.3"), Ok(()));
        assert_eq!(allows("10.1.2.0/+24"), Ok(()));
        // A different family never matches, even for /0.
        assert_eq!(allows("::/0"), Err(ErrorCode::NoAuth));
    }

    #[test]
    fn ip_matches_ipv6_in_any_spelling() {
        let client = [id("ip", "0:0:0:0:0:0:0:1")];
        let allows = |expr: &str| check_acl(&[acl(perms::READ, "ip", expr)], perms::READ, &client);
        assert_eq!(allows("::1"), Ok(()));
        assert_eq!(allows("0:0:0:0:0:0:0:1"), Ok(()));
        assert_eq!(allows("::2"), Err(ErrorCode::NoAuth));
        assert_eq!(allows("::/120"), Ok(()));
        assert_eq!(allows("::/128"), Err(ErrorCode::NoAuth));
        assert_eq!(allows("::1/129"), Err(ErrorCode::NoAuth));
        assert_eq!(allows("127.0.0.1"), Err(ErrorCode::NoAuth));
        let client = [id("ip", "2001:db8:0:0:0:ff00:42:8329")];
        let allows = |expr: &str| check_acl(&[acl(perms::READ, "ip", expr)], perms::READ, &client);
        assert_eq!(allows("2001:db8::/32"), Ok(()));
        assert_eq!(allows("2001:DB8::/32"), Ok(()));
        assert_eq!(allows("2001:db9::/32"), Err(ErrorCode::NoAuth));
        assert_eq!(allows("2001:db8::/33"), Ok(()));
    }

    #[test]
    fn auth_and_super_entries_never_match_in_check_acl() {
        let entries = vec![acl(perms::ALL, "auth", ""), acl(perms::ALL, "super", "")];
        assert_eq!(
            check_acl(&entries, perms::READ, &[id("auth", ""), id("digest", USER_DIGEST)]),
            Err(ErrorCode::NoAuth)
        );
    }

    #[test]
    fn fixup_rejects_an_empty_acl() {
        assert_eq!(fixup_acl(Providers::default(), &[], &[]), Err(ErrorCode::InvalidAcl));
    }

    #[test]
    fn fixup_removes_duplicates_keeping_first_order() {
        let input = vec![
            acl(perms::READ, "ip", "10.0.0.0/8"),
            acl(perms::ALL, "world", "anyone"),
            acl(perms::READ, "ip", "10.0.0.0/8"),
            // Same id with other perms is a different entry and stays.
            acl(perms::WRITE, "ip", "10.0.0.0/8"),
        ];
        assert_eq!(
            fixup_acl(Providers::default(), &[], &input).unwrap(),
            vec![
                acl(perms::READ, "ip", "10.0.0.0/8"),
                acl(perms::ALL, "world", "anyone"),
                acl(perms::WRITE, "ip", "10.0.0.0/8"),
            ]
        );
    }

    #[test]
    fn fixup_accepts_world_only_with_anyone() {
        assert_eq!(fixup_acl(Providers::default(), &[], &open_acl_unsafe()).unwrap(), open_acl_unsafe());
        assert_eq!(
            fixup_acl(Providers::default(), &[], &[acl(perms::ALL, "world", "everyone")]),
            Err(ErrorCode::InvalidAcl)
        );
    }

    #[test]
    fn fixup_expands_auth_to_digest_ids_only() {
        let ids =
            vec![id("ip", "10.0.0.1"), id("super", ""), id("digest", SUPER_TEST_DIGEST), id("digest", USER_DIGEST)];
        // The id text of an auth entry is ignored.
        let input = vec![acl(perms::READ | perms::WRITE, "auth", "ignored")];
        assert_eq!(
            fixup_acl(Providers::default(), &ids, &input).unwrap(),
            vec![
                acl(perms::READ | perms::WRITE, "digest", SUPER_TEST_DIGEST),
                acl(perms::READ | perms::WRITE, "digest", USER_DIGEST),
            ]
        );
    }

    #[test]
    fn fixup_auth_without_a_digest_identity_is_invalid() {
        let ids = vec![id("ip", "10.0.0.1"), id("super", "")];
        assert_eq!(fixup_acl(Providers::default(), &ids, &creator_all_acl()), Err(ErrorCode::InvalidAcl));
        assert_eq!(fixup_acl(Providers::default(), &[], &creator_all_acl()), Err(ErrorCode::InvalidAcl));
    }

    #[test]
    fn fixup_does_not_deduplicate_the_auth_expansion() {
        let ids = vec![id("digest", USER_DIGEST)];
        let input = vec![acl(perms::ALL, "digest", USER_DIGEST), acl(perms::ALL, "auth", "")];
        assert_eq!(
            fixup_acl(Providers::default(), &ids, &input).unwrap(),
            vec![acl(perms::ALL, "digest", USER_DIGEST), acl(perms::ALL, "digest", USER_DIGEST)]
        );
    }

    #[test]
    fn fixup_validates_digest_ids_with_java_split_rules() {
        let check = |text: &str| fixup_acl(Providers::default(), &[], &[acl(perms::ALL, "digest", text)]).is_ok();
        assert!(check("user:hash"));
        assert!(check(":hash"));
        assert!(check("user:hash:")); // trailing empty parts are dropped
        assert!(check("user:hash::"));
        assert!(!check("user"));
        assert!(!check("user:"));
        assert!(!check("a:b:c"));
        assert!(!check("a::b"));
        assert!(!check(""));
        assert!(!check(":"));
    }

    #[test]
    fn fixup_validates_ip_expressions() {
        let check = |text: &str| fixup_acl(Providers::default(), &[], &[acl(perms::ALL, "ip", text)]).is_ok();
        for good in [
            "10.0.0.1",
            "10.0.0.0/8",
            "0.0.0.0/0",
            "1.2.3.4/32",
            "+1.2.3.4",
            "::1",
            "::",
            "1::",
            "2001:db8::/32",
            "1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7:8/128",
        ] {
            assert!(check(good), "{good:?} should be valid");
        }
        for bad in [
            "",
            "localhost",
            "10.0.0",
            "10.0.0.1.",
            "10.0.0.256",
            "10.0.0.1/33",
            "10.0.0.1/",
            "10.0.0.1/8/8",
            "1:2:3:4:5:6:7",
            "1:2:3:4:5:6:7:8:9",
            "1::2::3",
            "1:::2",
            "1:2:3:4::5:6:7:8",
            "12345::",
            "g::",
            "::ffff:1.2.3.4",
            "fe80::1%eth0",
            "::1/129",
        ] {
            assert!(!check(bad), "{bad:?} should be invalid");
        }
    }

    #[test]
    fn fixup_rejects_schemes_without_a_provider() {
        for scheme in ["super", "sasl", "x509", "unknown", ""] {
            assert_eq!(
                fixup_acl(Providers::default(), &[id("super", "")], &[acl(perms::ALL, scheme, "x")]),
                Err(ErrorCode::InvalidAcl),
                "scheme {scheme:?}"
            );
        }
    }

    #[test]
    fn fixup_stores_any_permission_mask() {
        // PrepRequestProcessor never validates perms.
        for mask in [0, perms::ALL, 0x7fff_ffff, -1] {
            let input = vec![acl(mask, "world", "anyone")];
            assert_eq!(fixup_acl(Providers::default(), &[], &input).unwrap(), input);
        }
    }

    #[test]
    fn one_invalid_entry_fails_the_whole_acl() {
        let input = vec![acl(perms::ALL, "world", "anyone"), acl(perms::ALL, "ip", "bogus")];
        assert_eq!(fixup_acl(Providers::default(), &[], &input), Err(ErrorCode::InvalidAcl));
    }

    #[test]
    fn mask_digest_ids_hides_hashes_like_replace_all() {
        let input = vec![
            acl(perms::ALL, "digest", USER_DIGEST),
            acl(perms::READ, "ip", "10.0.0.0/8"),
            acl(perms::READ, "digest", "nohash"),
            acl(perms::READ, "digest", "a:b:c"),
            // '.' stops at a line terminator, so each line is masked on its own.
            acl(perms::READ, "digest", "a:b\nc:d"),
        ];
        assert_eq!(
            mask_digest_ids(&input),
            vec![
                acl(perms::ALL, "digest", "user:x"),
                acl(perms::READ, "ip", "10.0.0.0/8"),
                acl(perms::READ, "digest", "nohash"),
                acl(perms::READ, "digest", "a:x"),
                acl(perms::READ, "digest", "a:x\nc:x"),
            ]
        );
    }

    #[test]
    fn client_infos_report_user_names_per_provider() {
        let ids = vec![id("ip", "127.0.0.1"), id("super", ""), id("digest", USER_DIGEST), id("digest", ":hash")];
        let infos = client_infos(&ids);
        let pairs: Vec<(&str, &str)> =
            infos.iter().map(|info| (info.auth_scheme.as_str(), info.user.as_str())).collect();
        // Listed in ZooKeeper's hash-set order, not the order given.
        assert_eq!(pairs, vec![("digest", ""), ("digest", "user"), ("super", ""), ("ip", "127.0.0.1")]);
    }

    #[test]
    fn standard_acls_match_zoo_defs() {
        assert_eq!(open_acl_unsafe(), vec![acl(31, "world", "anyone")]);
        assert_eq!(creator_all_acl(), vec![acl(31, "auth", "")]);
        assert_eq!(read_acl_unsafe(), vec![acl(1, "world", "anyone")]);
    }

    #[test]
    fn creator_all_acl_becomes_the_creators_digest() {
        let mut ids = connection_ids(Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        let login = authenticate(&AuthConfig::default(), "digest", b"user:password", None).unwrap();
        add_auth_ids(&mut ids, login).unwrap();
        let fixed = fixup_acl(Providers::default(), &ids, &creator_all_acl()).unwrap();
        assert_eq!(fixed, vec![acl(perms::ALL, "digest", USER_DIGEST)]);
        assert_eq!(check_acl(&fixed, perms::DELETE, &ids), Ok(()));
        let stranger = connection_ids(Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert_eq!(check_acl(&fixed, perms::READ, &stranger), Err(ErrorCode::NoAuth));
    }

    #[test]
    fn x509_ids_are_valid_acl_entries_only_with_the_provider_on() {
        let x509 = Providers { x509: true, ..Providers::default() };
        let subject = "CN=zk-client,OU=Clients,O=Example\\, Inc,C=US";
        let entry = [acl(perms::ALL, "x509", subject)];
        assert_eq!(fixup_acl(Providers::default(), &[], &entry), Err(ErrorCode::InvalidAcl));
        assert_eq!(fixup_acl(x509, &[], &entry).unwrap(), entry);
        for bad in ["", "  ", "CN", "=x", "CN=a,,O=b", "CN=a,O"] {
            assert_eq!(fixup_acl(x509, &[], &[acl(perms::ALL, "x509", bad)]), Err(ErrorCode::InvalidAcl), "{bad:?}");
        }
        // An `auth` entry expands to the connection's x509 identity, as to its digest ones.
        let ids = [id("ip", "127.0.0.1"), id("x509", subject)];
        assert_eq!(fixup_acl(x509, &ids, &creator_all_acl()).unwrap(), entry);
    }

    #[test]
    fn an_x509_entry_admits_exactly_that_subject() {
        let entry = [acl(perms::READ, "x509", "CN=a,O=b")];
        assert_eq!(check_acl(&entry, perms::READ, &[id("x509", "CN=a,O=b")]), Ok(()));
        assert_eq!(check_acl(&entry, perms::READ, &[id("x509", "CN=a,O=c")]), Err(ErrorCode::NoAuth));
        assert_eq!(check_acl(&entry, perms::READ, &[id("digest", "CN=a,O=b")]), Err(ErrorCode::NoAuth));
        assert_eq!(check_acl(&entry, perms::WRITE, &[id("x509", "CN=a,O=b")]), Err(ErrorCode::NoAuth));
    }

    #[test]
    fn sasl_ids_are_valid_kerberos_names_with_the_provider_on() {
        let sasl = Providers { sasl: true, ..Providers::default() };
        assert_eq!(fixup_acl(Providers::default(), &[], &[acl(perms::ALL, "sasl", "bob")]), Err(ErrorCode::InvalidAcl));
        for good in ["bob", "client@KAZOOTEST.ORG", "zk/host@R", "a/b"] {
            assert!(fixup_acl(sasl, &[], &[acl(perms::ALL, "sasl", good)]).is_ok(), "{good}");
        }
        for bad in ["a@b@c", "a/b/c@R", "a@R/x"] {
            assert_eq!(fixup_acl(sasl, &[], &[acl(perms::ALL, "sasl", bad)]), Err(ErrorCode::InvalidAcl), "{bad}");
        }
        let entry = [acl(perms::READ, "sasl", "bob")];
        assert_eq!(check_acl(&entry, perms::READ, &[id("sasl", "bob")]), Ok(()));
        assert_eq!(check_acl(&entry, perms::READ, &[id("sasl", "eve")]), Err(ErrorCode::NoAuth));
        assert_eq!(
            fixup_acl(sasl, &[id("sasl", "bob")], &creator_all_acl()).unwrap(),
            [acl(perms::ALL, "sasl", "bob")]
        );
    }
}
