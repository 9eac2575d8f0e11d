//! JAAS login configuration files (`java.security.auth.login.config`), as ZooKeeper's server
//! reads its `Server` section (or the one `zookeeper.sasl.serverconfig` names):
//!
//! ```text
//! Server {
//!     org.apache.zookeeper.server.auth.DigestLoginModule required
//!     user_super="adminsecret"
//!     user_bob="bobsecret";
//! };
//! ```
//!
//! Each `user_NAME="password"` option of a DigestLoginModule is a DIGEST-MD5 user. A
//! Krb5LoginModule (Kerberos, GSSAPI) is refused: zkd does not have it.

use std::collections::BTreeMap;

/// One login module entry of a section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginModule {
    pub class: String,
    pub flag: String,
    pub options: BTreeMap<String, String>,
}

/// The sections of a JAAS file, by name.
pub type Jaas = BTreeMap<String, Vec<LoginModule>>;

const DIGEST_LOGIN_MODULE: &str = "org.apache.zookeeper.server.auth.DigestLoginModule";

/// Words, quoted strings and the punctuation `{ } ; =`, without comments.
fn tokens(text: &str) -> Result<Vec<String>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut previous = ' ';
                loop {
                    let c = chars.next().ok_or_else(|| String::from("an unterminated comment"))?;
                    if previous == '*' && c == '/' {
                        break;
                    }
                    previous = c;
                }
            }
            '{' | '}' | ';' | '=' => tokens.push(c.to_string()),
            '"' => {
                let mut value = String::from("\"");
                loop {
                    match chars.next().ok_or_else(|| String::from("an unterminated quoted string"))? {
                        '\\' => value.push(chars.next().ok_or_else(|| String::from("a dangling backslash"))?),
                        '"' => break,
                        c => value.push(c),
                    }
                }
                tokens.push(value);
            }
            c => {
                let mut word = c.to_string();
                while let Some(&next) = chars.peek() {
                    if next.is_whitespace() || "{};=\"".contains(next) {
                        break;
                    }
                    word.push(next);
                    chars.next();
                }
                tokens.push(word);
            }
        }
    }
    Ok(tokens)
}

/// Parses a JAAS file's text.
pub fn parse(text: &str) -> Result<Jaas, String> {
    let tokens = tokens(text)?;
    let mut at = 0;
    let next = |at: &mut usize| -> Result<String, String> {
        let token = tokens.get(*at).cloned().ok_or_else(|| String::from("the file ends inside a section"))?;
        *at += 1;
        Ok(token)
    };
    let mut jaas = Jaas::new();
    while at < tokens.len() {
        let name = next(&mut at)?;
        if next(&mut at)? != "{" {
            return Err(format!("section {name:?}: expected {{"));
        }
        let mut modules = Vec::new();
        loop {
            let class = next(&mut at)?;
            if class == "}" {
                break;
            }
            let flag = next(&mut at)?;
            let mut options = BTreeMap::new();
            loop {
                let key = next(&mut at)?;
                if key == ";" {
                    break;
                }
                if next(&mut at)? != "=" {
                    return Err(format!("section {name:?}: option {key:?} without a value"));
                }
                let value = next(&mut at)?;
                let value = value.strip_prefix('"').map(str::to_owned).unwrap_or(value);
                options.insert(key, value);
            }
            modules.push(LoginModule { class, flag, options });
        }
        if tokens.get(at).map(String::as_str) == Some(";") {
            at += 1;
        }
        if jaas.insert(name.clone(), modules).is_some() {
            return Err(format!("section {name:?} appears twice"));
        }
    }
    Ok(jaas)
}

/// The DIGEST-MD5 users of a section: every `user_NAME="password"` of its
/// DigestLoginModule. Another login module is an error.
pub fn digest_users(jaas: &Jaas, section: &str) -> Result<BTreeMap<String, String>, String> {
    let modules = jaas.get(section).ok_or_else(|| format!("no JAAS section named {section:?}"))?;
    let mut users = BTreeMap::new();
    for module in modules {
        if module.class != DIGEST_LOGIN_MODULE {
            let what = if module.class.ends_with("Krb5LoginModule") {
                "Kerberos (GSSAPI) is not built yet (issue 18)"
            } else {
                "zkd has DigestLoginModule only"
            };
            return Err(format!("section {section:?}: login module {:?} is not supported: {what}", module.class));
        }
        for (key, value) in &module.options {
            if let Some(user) = key.strip_prefix("user_") {
                users.insert(user.to_owned(), value.clone());
            }
        }
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
        // ZooKeeper's server logins
        Server {
            org.apache.zookeeper.server.auth.DigestLoginModule required
            user_super="admin secret"
            user_bob="bob\"secret";
        };
        /* a client section
           zkd does not read */
        Client { org.apache.zookeeper.server.auth.DigestLoginModule required username="bob" password="x"; };
        QuorumServer {
            com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true keyTab="/k" principal="zk/h@R";
        };
    "#;

    #[test]
    fn the_server_sections_digest_users_are_read() {
        let jaas = parse(FILE).unwrap();
        assert_eq!(jaas.len(), 3);
        let users = digest_users(&jaas, "Server").unwrap();
        let expected: BTreeMap<String, String> =
            [("bob", "bob\"secret"), ("super", "admin secret")].map(|(u, p)| (u.to_owned(), p.to_owned())).into();
        assert_eq!(users, expected);
        assert_eq!(jaas["QuorumServer"][0].options["useKeyTab"], "true");
    }

    #[test]
    fn kerberos_missing_sections_and_bad_files_are_errors() {
        let jaas = parse(FILE).unwrap();
        assert!(digest_users(&jaas, "QuorumServer").unwrap_err().contains("Kerberos"));
        assert!(digest_users(&jaas, "Other").unwrap_err().contains("no JAAS section"));
        for bad in [
            "Server",
            "Server {",
            "Server { M required a=; };",
            "Server { M required a \"b\"; };",
            "S { M r a=\"x",
            "/* open",
            "A {}; A {};",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
