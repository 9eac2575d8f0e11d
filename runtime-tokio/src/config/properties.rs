//! ZooKeeper's system properties, as zkd receives them: `-Dname=value` arguments before the
//! configuration file, and the `SERVER_JVMFLAGS` and `JVMFLAGS` environment variables that
//! zkServer.sh passes to the JVM.
//!
//! Later ones win, as on a Java command line: `SERVER_JVMFLAGS`, then `JVMFLAGS`, then the
//! command line. zoo.cfg wins over all of them (ZooKeeper sets a property for each zoo.cfg
//! key it does not parse itself, after the JVM has started). Flags that are not properties
//! (`-Xmx512m`, `-XX:+UseG1GC`) are the JVM's and are skipped.

use std::fmt;

/// Where a property came from, for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PropertyOrigin {
    CommandLine,
    Environment(&'static str),
}

/// One `-Dname=value`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Property {
    pub name: String,
    pub value: String,
    pub origin: PropertyOrigin,
}

impl fmt::Display for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            PropertyOrigin::CommandLine => write!(f, "-D{}", self.name),
            PropertyOrigin::Environment(variable) => write!(f, "-D{} (from {variable})", self.name),
        }
    }
}

/// The environment variables zkd reads properties from, in the order they apply.
pub const ENVIRONMENT_VARIABLES: [&str; 2] = ["SERVER_JVMFLAGS", "JVMFLAGS"];

/// A property from `-Dname=value` or `-Dname` (an empty value, as Java reads it); `None` for
/// a flag that is not a property.
fn property(flag: &str, origin: PropertyOrigin) -> Result<Option<Property>, String> {
    let Some(definition) = flag.strip_prefix("-D") else {
        return Ok(None);
    };
    let (name, value) = definition.split_once('=').unwrap_or((definition, ""));
    if name.is_empty() {
        return Err(format!("{flag:?}: a property without a name"));
    }
    Ok(Some(Property { name: name.to_owned(), value: value.to_owned(), origin }))
}

/// Splits zkd's command line into its properties (the `-D` arguments) and the rest.
pub fn from_arguments(arguments: &[String]) -> Result<(Vec<Property>, Vec<String>), String> {
    let mut properties = Vec::new();
    let mut rest = Vec::new();
    for argument in arguments {
        match property(argument, PropertyOrigin::CommandLine)? {
            Some(found) => properties.push(found),
            None => rest.push(argument.clone()),
        }
    }
    Ok((properties, rest))
}

/// The properties in the value of a JVMFLAGS-like variable. Words are split at white space
/// as the shell splits an unquoted `$JVMFLAGS`; a value may be quoted with `'` or `"`.
pub fn from_jvm_flags(variable: &'static str, text: &str) -> Result<Vec<Property>, String> {
    let words = shell_words(text).map_err(|problem| format!("{variable}: {problem}"))?;
    let mut properties = Vec::new();
    for word in words {
        if let Some(found) = property(&word, PropertyOrigin::Environment(variable))
            .map_err(|problem| format!("{variable}: {problem}"))?
        {
            properties.push(found);
        }
    }
    Ok(properties)
}

/// The properties of the process's environment, in the order they apply.
pub fn from_environment(lookup: impl Fn(&str) -> Option<String>) -> Result<Vec<Property>, String> {
    let mut properties = Vec::new();
    for variable in ENVIRONMENT_VARIABLES {
        if let Some(text) = lookup(variable) {
            properties.extend(from_jvm_flags(variable, &text)?);
        }
    }
    Ok(properties)
}

/// Splits at white space outside quotes; quotes are removed.
fn shell_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    for c in text.chars() {
        match (quote, c) {
            (Some(open), c) if c == open => quote = None,
            (Some(_), c) => word.get_or_insert_with(String::new).push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_with(String::new);
            }
            (None, c) if c.is_whitespace() => words.extend(word.take()),
            (None, c) => word.get_or_insert_with(String::new).push(c),
        }
    }
    if let Some(open) = quote {
        return Err(format!("an unclosed {open} quote"));
    }
    words.extend(word);
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_values(properties: &[Property]) -> Vec<(&str, &str)> {
        properties.iter().map(|p| (p.name.as_str(), p.value.as_str())).collect()
    }

    #[test]
    fn arguments_before_the_file_are_properties() {
        let arguments: Vec<String> =
            ["-Dzookeeper.superDigest=super:x=", "-Dreadonlymode.enabled", "-Dk=a=b", "zoo.cfg"]
                .map(String::from)
                .into();
        let (properties, rest) = from_arguments(&arguments).unwrap();
        assert_eq!(
            names_values(&properties),
            [("zookeeper.superDigest", "super:x="), ("readonlymode.enabled", ""), ("k", "a=b")]
        );
        assert_eq!(rest, ["zoo.cfg"]);
        assert_eq!(properties[0].to_string(), "-Dzookeeper.superDigest");
        assert!(from_arguments(&[String::from("-D=x")]).unwrap_err().contains("without a name"));
    }

    #[test]
    fn jvm_flags_skip_the_jvms_own_and_keep_quoted_values() {
        let text = " -Xmx1g -XX:+UseG1GC  -Dzookeeper.ssl.keyStore.password='a secret' \t-Dx=\"1 2\"  -cp a:b ";
        let properties = from_jvm_flags("JVMFLAGS", text).unwrap();
        assert_eq!(names_values(&properties), [("zookeeper.ssl.keyStore.password", "a secret"), ("x", "1 2")]);
        assert_eq!(properties[1].to_string(), "-Dx (from JVMFLAGS)");
        assert!(from_jvm_flags("JVMFLAGS", "-Dx='open").unwrap_err().contains("unclosed"));
    }

    #[test]
    fn server_jvmflags_apply_before_jvmflags() {
        let environment = |variable: &str| match variable {
            "JVMFLAGS" => Some(String::from("-Da=2")),
            "SERVER_JVMFLAGS" => Some(String::from("-Da=1 -Db=1")),
            _ => None,
        };
        let properties = from_environment(environment).unwrap();
        assert_eq!(names_values(&properties), [("a", "1"), ("b", "1"), ("a", "2")]);
    }
}
