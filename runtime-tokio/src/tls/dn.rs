//! The subject of an X.509 certificate as Java's `X500Principal.getName()` prints it (RFC 2253 format).
//!
//! ZooKeeper's `X509AuthenticationProvider` uses that string as the `x509` auth id, so ACLs written for a Java
//! server only match if zkd produces exactly the same bytes. The rules below were checked against JDK 17
//! (`getSubjectX500Principal().getName()`) on the `dn-*.der` fixtures:
//!
//! - RDNs in reverse DER order, joined by `,` (no space). The AVAs of a multi-valued RDN are joined by `+`
//!   in DER order (Java does not re-sort them for this format).
//! - Keywords only for CN C L ST O OU STREET DC UID. Any other attribute (emailAddress, serialNumber, title, …)
//!   is printed as `<dotted oid>=#<lowercase hex of the value's DER encoding, tag and length included>`.
//!   A known attribute whose value is not a string type is hex-encoded the same way.
//! - String values (PrintableString, T61String, IA5String, GeneralString, UTF8String, BMPString,
//!   UniversalString) have their content bytes decoded as UTF-8 (lossily, as Java's `new String(bytes, "UTF8")`)
//!   and printed raw, with `, = + < > # ; " \` backslash-escaped wherever they occur, NUL printed as `\00`,
//!   and leading/trailing spaces (and CRs) backslash-escaped.

use x509_parser::asn1_rs::Any;
use x509_parser::prelude::{FromDer, X509Certificate};

/// Attribute OIDs (dotted) that Java's RFC 2253 output prints with a keyword.
const KEYWORDS: [(&str, &str); 9] = [
    ("2.5.4.3", "CN"),
    ("2.5.4.6", "C"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.9", "STREET"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
];

/// Universal tags Java treats as strings in RFC 2253 output (`AVA.isDerString(value, false)`):
/// UTF8String, PrintableString, T61String, IA5String, UniversalString, GeneralString, BMPString.
const STRING_TAGS: [u32; 7] = [12, 19, 20, 22, 28, 27, 30];

/// Characters Java's `AVA.toRFC2253String` escapes with a backslash wherever they occur.
const ESCAPEES: &str = ",=+<>#;\"\\";

/// The certificate's subject in Java `X500Principal.getName()` (RFC 2253) form.
pub fn rfc2253(cert_der: &[u8]) -> Result<String, String> {
    let (_, cert) = X509Certificate::from_der(cert_der).map_err(|e| format!("cannot parse certificate: {e}"))?;
    let rdns: Vec<String> = cert
        .subject()
        .iter_rdn()
        .map(|rdn| {
            let avas: Vec<String> =
                rdn.iter().map(|ava| format_ava(&ava.attr_type().to_id_string(), ava.attr_value())).collect();
            avas.join("+")
        })
        .collect();
    Ok(rdns.into_iter().rev().collect::<Vec<_>>().join(","))
}

fn format_ava(oid: &str, value: &Any<'_>) -> String {
    let keyword = KEYWORDS.iter().find(|(o, _)| *o == oid).map(|(_, k)| *k);
    let is_string = value.header.class() == x509_parser::asn1_rs::Class::Universal
        && !value.header.constructed()
        && STRING_TAGS.contains(&value.header.tag().0);
    match keyword {
        Some(k) if is_string => format!("{k}={}", escape_value(&String::from_utf8_lossy(value.data))),
        Some(k) => format!("{k}=#{}", hex(&der_encoding(value))),
        None => format!("{oid}=#{}", hex(&der_encoding(value))),
    }
}

/// Escapes a string value the way `AVA.toRFC2253String` does.
fn escape_value(value: &str) -> String {
    let mut escaped: Vec<char> = Vec::with_capacity(value.len());
    for c in value.chars() {
        if ESCAPEES.contains(c) {
            escaped.extend(['\\', c]);
        } else if c == '\0' {
            escaped.extend(['\\', '0', '0']);
        } else {
            escaped.push(c);
        }
    }
    let is_ws = |c: &char| *c == ' ' || *c == '\r';
    let lead = escaped.iter().take_while(|c| is_ws(c)).count();
    let trail = escaped.len() - escaped.iter().rev().take_while(|c| is_ws(c)).count();
    let mut out = String::with_capacity(escaped.len() + 4);
    for (i, c) in escaped.iter().enumerate() {
        if i < lead || i >= trail {
            out.push('\\');
        }
        out.push(*c);
    }
    out
}

/// The DER encoding (identifier, definite minimal length, content) of a parsed value, as Java's
/// `DerValue.toByteArray()` re-encodes it.
fn der_encoding(value: &Any<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.data.len() + 8);
    match value.header.raw_tag() {
        Some(raw) => out.extend_from_slice(raw),
        None => {
            let h = &value.header;
            let first = ((h.class() as u8) << 6) | if h.constructed() { 0x20 } else { 0 };
            let tag = h.tag().0;
            if tag < 31 {
                out.push(first | tag as u8);
            } else {
                out.push(first | 0x1f);
                let groups: Vec<u8> = (0..5).rev().map(|i| ((tag >> (7 * i)) & 0x7f) as u8).collect();
                let start = groups.iter().position(|g| *g != 0).unwrap_or(groups.len() - 1);
                let last = groups.len() - 1;
                out.extend(groups.iter().enumerate().skip(start).map(|(i, g)| if i < last { g | 0x80 } else { *g }));
            }
        }
    }
    let len = value.data.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(value.data);
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected strings are JDK 17's `getSubjectX500Principal().getName()` on the same files.
    const CASES: [(&str, &[u8], &str); 8] = [
        (
            "client",
            include_bytes!("../../tests/fixtures/tls/client-cert.der"),
            r"CN=zk-client,OU=Clients,O=Example\, Inc,C=US",
        ),
        ("ca", include_bytes!("../../tests/fixtures/tls/ca.der"), "CN=zkd test CA,O=zkd test"),
        (
            "email",
            include_bytes!("../../tests/fixtures/tls/dn-email.der"),
            r"2.5.4.12=#0c024472,2.5.4.5=#13023432,1.2.840.113549.1.9.1=#1606616240632e64,CN=a b,O=Example\, Inc,C=US",
        ),
        (
            "escapes",
            include_bytes!("../../tests/fixtures/tls/dn-escapes.der"),
            r#"CN=x\+y\=z\;\<q\>\"\\ mid\#hash! *&,OU=\#hash,O=\ lead and trail\ "#,
        ),
        ("multi", include_bytes!("../../tests/fixtures/tls/dn-multi.der"), "CN=a+UID=b,O=x"),
        ("multi2", include_bytes!("../../tests/fixtures/tls/dn-multi2.der"), "CN=a+OU=c+UID=b,O=x"),
        (
            "utf8",
            include_bytes!("../../tests/fixtures/tls/dn-utf8.der"),
            "STREET=Main St 1,DC=example,CN=Jürgen,ST=Nordrhein-Westfalen,L=Köln,C=DE",
        ),
        // BMPString "a€b" and T61String "J\xfcrgen", decoded as UTF-8 like Java does.
        ("bmp", include_bytes!("../../tests/fixtures/tls/dn-bmp.der"), "CN=\\00a \u{fffd}\\00b,O=J\u{fffd}rgen"),
    ];

    #[test]
    fn matches_java() {
        for (name, der, want) in CASES {
            assert_eq!(rfc2253(der).as_deref(), Ok(want), "{name}");
        }
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(rfc2253(b"").is_err());
        assert!(rfc2253(b"\x30\x03\x02\x01").is_err());
        let der = CASES[0].1;
        for len in 0..der.len() {
            assert!(rfc2253(&der[..len]).is_err(), "prefix {len}");
        }
    }

    #[test]
    fn non_string_values_are_hex() {
        use x509_parser::asn1_rs::{Class, Header, Length, Tag};
        let int = Any::new(Header::new(Class::Universal, false, Tag::Integer, Length::Definite(1)), &[5]);
        assert_eq!(format_ava("2.5.4.3", &int), "CN=#020105");
        let long = vec![b'a'; 200];
        let ctx = Any::new(Header::new(Class::ContextSpecific, true, Tag(40), Length::Definite(200)), &long);
        let enc = der_encoding(&ctx);
        assert_eq!(&enc[..5], &[0xbf, 0x28, 0x81, 200, b'a']);
        assert_eq!(enc.len(), 204);
    }

    #[test]
    fn escaping_rules() {
        assert_eq!(escape_value("  a b  "), r"\ \ a b\ \ ");
        assert_eq!(escape_value("#x#"), r"\#x\#");
        assert_eq!(escape_value("a\0b"), r"a\00b");
        assert_eq!(escape_value(""), "");
    }
}
