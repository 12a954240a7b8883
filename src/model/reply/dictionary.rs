//! RADIUS attribute dictionaries: the built-in one ([`super::builtin`]) and
//! FreeRADIUS-format files (`radius.dictionary_files`), parsed from text.
//!
//! Understands `VENDOR`, `BEGIN-VENDOR`/`END-VENDOR`, `ATTRIBUTE` (with the
//! `has_tag` and `encrypt=` flags, and the old trailing vendor name) and
//! `VALUE`. `$INCLUDE` is refused with its reason (each file is listed on
//! its own). What radotp cannot send (TLVs, extended and non-1,1-format
//! vendor attributes, encrypted attributes, types such as `abinary`) is
//! kept with the reason, so a rule naming it is refused with that reason
//! while the file itself still loads. Pure: the caller reads the files.

use std::collections::HashMap;

/// How an attribute's value is written on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// UTF-8 text (`string`).
    Text,
    /// Bytes (`octets`): the text as written, or `0x` and hex digits.
    Octets,
    /// 32-bit unsigned (`integer`, and `date` as seconds since 1970).
    Integer,
    Byte,
    Short,
    Integer64,
    Signed,
    /// IPv4 address (`ipaddr`).
    Ipv4,
    /// IPv6 address (`ipv6addr`).
    Ipv6,
    /// IPv6 prefix (`ipv6prefix`, RFC 3162).
    Ipv6Prefix,
    /// IPv4 prefix (`ipv4prefix`, RFC 6572).
    Ipv4Prefix,
    /// Interface id (`ifid`): four groups of four hex digits.
    InterfaceId,
    /// MAC address (`ether`).
    Ether,
}

impl ValueType {
    fn from_name(name: &str) -> Option<ValueType> {
        Some(match name {
            "string" => ValueType::Text,
            "octets" => ValueType::Octets,
            "integer" | "date" => ValueType::Integer,
            "byte" => ValueType::Byte,
            "short" => ValueType::Short,
            "integer64" => ValueType::Integer64,
            "signed" => ValueType::Signed,
            "ipaddr" => ValueType::Ipv4,
            "ipv6addr" => ValueType::Ipv6,
            "ipv6prefix" => ValueType::Ipv6Prefix,
            "ipv4prefix" => ValueType::Ipv4Prefix,
            "ifid" => ValueType::InterfaceId,
            "ether" => ValueType::Ether,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ValueType::Text => "string",
            ValueType::Octets => "octets",
            ValueType::Integer => "integer",
            ValueType::Byte => "byte",
            ValueType::Short => "short",
            ValueType::Integer64 => "integer64",
            ValueType::Signed => "signed",
            ValueType::Ipv4 => "ipaddr",
            ValueType::Ipv6 => "ipv6addr",
            ValueType::Ipv6Prefix => "ipv6prefix",
            ValueType::Ipv4Prefix => "ipv4prefix",
            ValueType::InterfaceId => "ifid",
            ValueType::Ether => "ether",
        }
    }
}

/// One attribute as a dictionary defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub name: String,
    /// The vendor's enterprise number, for a Vendor-Specific attribute.
    pub vendor: Option<u32>,
    /// The attribute number (vendor type for a vendor attribute).
    pub number: u8,
    /// `Err(reason)`: radotp cannot send this attribute.
    pub value_type: Result<ValueType, String>,
    /// RFC 2868 tag (`has_tag`).
    pub tagged: bool,
    /// Named values of an enumerated integer (`VALUE`): by lowercase name,
    /// the name as written and the number.
    pub values: HashMap<String, (String, u64)>,
}

/// Attributes by (lowercase) name.
#[derive(Debug, Clone, Default)]
pub struct Dictionary {
    attributes: HashMap<String, Attribute>,
    vendors: HashMap<String, VendorDef>,
}

#[derive(Debug, Clone, Copy)]
struct VendorDef {
    number: u32,
    /// Only the common format (1-octet type, 1-octet length) is sendable.
    standard_format: bool,
}

/// Why a dictionary text was refused, with its line number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct DictionaryError {
    pub line: usize,
    pub message: String,
}

impl Dictionary {
    /// The built-in dictionary.
    pub fn builtin() -> Dictionary {
        let mut dictionary = Dictionary::default();
        dictionary
            .load(super::builtin::BUILTIN)
            .unwrap_or_else(|e| unreachable!("the built-in dictionary parses (tested): {e}"));
        dictionary
    }

    pub fn get(&self, name: &str) -> Option<&Attribute> {
        self.attributes.get(&name.to_ascii_lowercase())
    }

    /// Number of attributes known.
    pub fn len(&self) -> usize {
        self.attributes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.attributes.is_empty()
    }

    /// Adds the definitions of a FreeRADIUS-format dictionary text. A later
    /// definition of a name replaces an earlier one (as in FreeRADIUS).
    /// On error nothing of this text is kept.
    pub fn load(&mut self, text: &str) -> Result<(), DictionaryError> {
        let mut staged = self.clone();
        let mut vendor_block: Option<String> = None;
        let mut tlv_depth = 0usize;
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let fail = |message: String| DictionaryError { line, message };
            let content = raw.split('#').next().unwrap_or("");
            let words: Vec<&str> = content.split_whitespace().collect();
            let Some(keyword) = words.first() else { continue };
            match *keyword {
                "$INCLUDE" | "$INCLUDE-" => {
                    return Err(fail(
                        "$INCLUDE is not followed: list each dictionary file in radius.dictionary_files".into(),
                    ));
                }
                "VENDOR" => {
                    let (Some(name), Some(number)) = (words.get(1), words.get(2)) else {
                        return Err(fail("VENDOR needs a name and a number".into()));
                    };
                    let number = parse_number(number).ok_or_else(|| fail(format!("bad vendor number {number}")))?;
                    let number = u32::try_from(number).map_err(|_| fail("vendor number too large".into()))?;
                    let standard_format = match words.get(3) {
                        None => true,
                        Some(flags) => *flags == "format=1,1",
                    };
                    staged.vendors.insert(name.to_ascii_lowercase(), VendorDef { number, standard_format });
                }
                "BEGIN-VENDOR" => {
                    let Some(name) = words.get(1) else { return Err(fail("BEGIN-VENDOR needs a name".into())) };
                    if !staged.vendors.contains_key(&name.to_ascii_lowercase()) {
                        return Err(fail(format!(
                            "BEGIN-VENDOR {name}: no VENDOR {name} defined before (list the file that defines it earlier in radius.dictionary_files)"
                        )));
                    }
                    // `format=Extended-Vendor-Specific-N`: a vendor space inside an extended attribute.
                    vendor_block = Some(if words.len() > 2 { String::new() } else { name.to_ascii_lowercase() });
                }
                "END-VENDOR" => {
                    if vendor_block.take().is_none() {
                        return Err(fail("END-VENDOR without BEGIN-VENDOR".into()));
                    }
                }
                "BEGIN-TLV" => tlv_depth += 1,
                "END-TLV" => tlv_depth = tlv_depth.saturating_sub(1),
                "ATTRIBUTE" => {
                    if words.len() < 4 {
                        return Err(fail("ATTRIBUTE needs a name, a number and a type".into()));
                    }
                    let vendor_name = match (&vendor_block, words.get(4)) {
                        (Some(block), _) => Some(block.clone()),
                        (None, Some(extra)) if staged.vendors.contains_key(&extra.to_ascii_lowercase()) => {
                            Some(extra.to_ascii_lowercase())
                        }
                        _ => None,
                    };
                    let flags = match (&vendor_block, words.get(4)) {
                        (None, Some(extra)) if vendor_name.is_some() => {
                            let _ = extra;
                            words.get(5).copied().unwrap_or("")
                        }
                        _ => words.get(4).copied().unwrap_or(""),
                    };
                    let attribute = staged.attribute(words[1], words[2], words[3], flags, vendor_name, tlv_depth > 0);
                    staged.attributes.insert(words[1].to_ascii_lowercase(), attribute);
                }
                "VALUE" => {
                    if words.len() < 4 {
                        return Err(fail("VALUE needs an attribute, a name and a number".into()));
                    }
                    let number = parse_number(words[3]).ok_or_else(|| fail(format!("bad value {}", words[3])))?;
                    // FreeRADIUS allows VALUEs of attributes defined later, or not at all: ignored then.
                    if let Some(attribute) = staged.attributes.get_mut(&words[1].to_ascii_lowercase()) {
                        attribute.values.insert(words[2].to_ascii_lowercase(), (words[2].to_string(), number));
                    }
                }
                "FLAGS" | "PROTOCOL" | "BEGIN-PROTOCOL" | "END-PROTOCOL" | "ALIAS" | "STRUCT" | "MEMBER" | "ENUM" => {
                    // Definitions radotp never sends (FreeRADIUS 4 syntax among them).
                }
                other => return Err(fail(format!("unknown keyword {other}"))),
            }
        }
        if let Some(block) = vendor_block {
            return Err(DictionaryError {
                line: text.lines().count(),
                message: format!("BEGIN-VENDOR {block} is never ended"),
            });
        }
        *self = staged;
        Ok(())
    }

    fn attribute(
        &self,
        name: &str,
        number: &str,
        type_name: &str,
        flags: &str,
        vendor_name: Option<String>,
        in_tlv: bool,
    ) -> Attribute {
        let vendor = vendor_name.as_deref().and_then(|v| self.vendors.get(v).copied());
        let mut unsendable = None;
        let parsed = parse_number(number).and_then(|n| u8::try_from(n).ok());
        if in_tlv {
            unsendable = Some("it is inside a TLV".to_string());
        } else if vendor_name.as_deref() == Some("") {
            unsendable = Some("it is an extended vendor attribute".to_string());
        } else if parsed.is_none() {
            unsendable = Some(format!("its number {number} is not one octet (an extended or internal attribute)"));
        } else if vendor.is_some_and(|v| !v.standard_format) {
            unsendable = Some("its vendor uses a format other than 1,1".to_string());
        }
        let tagged = flags.split(',').any(|f| f == "has_tag");
        if let Some(method) = flags.split(',').find_map(|f| f.strip_prefix("encrypt=")) {
            unsendable.get_or_insert(format!("it is encrypted (encrypt={method})"));
        }
        let value_type = match (unsendable, ValueType::from_name(type_name)) {
            (Some(reason), _) => Err(reason),
            (None, Some(t)) => Ok(t),
            (None, None) => Err(format!("its type {type_name} is not supported in replies")),
        };
        let existing = self.attributes.get(&name.to_ascii_lowercase());
        Attribute {
            name: name.to_string(),
            vendor: vendor.map(|v| v.number),
            number: parsed.unwrap_or(0),
            value_type,
            tagged,
            values: existing.map(|a| a.values.clone()).unwrap_or_default(),
        }
    }
}

/// A decimal, `0x` hex or `0` octal-free number as dictionaries write them.
fn parse_number(text: &str) -> Option<u64> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_dictionary_knows_rfc_and_vendor_attributes() {
        let d = Dictionary::builtin();
        let filter = d.get("filter-id").unwrap();
        assert_eq!((filter.vendor, filter.number, filter.value_type.clone()), (None, 11, Ok(ValueType::Text)));
        let tunnel = d.get("Tunnel-Type").unwrap();
        assert!(tunnel.tagged);
        assert_eq!(tunnel.values.get("vlan").map(|v| v.1), Some(13));
        let forti = d.get("Fortinet-Group-Name").unwrap();
        assert_eq!((forti.vendor, forti.number), (Some(12356), 1));
        for name in ["Cisco-AVPair", "MS-Primary-DNS-Server", "PaloAlto-User-Group", "Juniper-Local-User-Name"] {
            assert!(d.get(name).is_some_and(|a| a.value_type.is_ok()), "{name}");
        }
        for name in ["Aruba-User-Role", "Mikrotik-Group", "Delegated-IPv6-Prefix", "Acct-Interim-Interval"] {
            assert!(d.get(name).is_some_and(|a| a.value_type.is_ok()), "{name}");
        }
    }

    #[test]
    fn a_freeradius_file_adds_a_vendor() {
        let mut d = Dictionary::builtin();
        let text = "VENDOR Example 99999\nBEGIN-VENDOR Example\nATTRIBUTE Example-Role 7 string\n\
                    ATTRIBUTE Example-Level 8 integer\nVALUE Example-Level High 3\nEND-VENDOR Example\n";
        d.load(text).unwrap();
        let role = d.get("example-role").unwrap();
        assert_eq!((role.vendor, role.number), (Some(99999), 7));
        assert_eq!(d.get("Example-Level").unwrap().values.get("high").map(|v| v.1), Some(3));
    }

    #[test]
    fn what_cannot_be_sent_is_kept_with_its_reason() {
        let mut d = Dictionary::default();
        let text = "ATTRIBUTE Tunnel-Password 69 string has_tag,encrypt=2\nATTRIBUTE Ascend-Data-Filter 242 abinary\n\
                    ATTRIBUTE Frag-Status 241.1 integer\nVENDOR Lucent 4846 format=2,2\n\
                    ATTRIBUTE Lucent-Max 2 integer Lucent\n";
        d.load(text).unwrap();
        assert!(d.get("Tunnel-Password").unwrap().value_type.clone().unwrap_err().contains("encrypt"));
        assert!(d.get("Ascend-Data-Filter").unwrap().value_type.clone().unwrap_err().contains("abinary"));
        assert!(d.get("Frag-Status").unwrap().value_type.clone().unwrap_err().contains("241.1"));
        assert!(d.get("Lucent-Max").unwrap().value_type.clone().unwrap_err().contains("format"));
    }

    #[test]
    fn include_and_broken_lines_are_refused_with_the_line() {
        let mut d = Dictionary::default();
        let e = d.load("# comment\n$INCLUDE dictionary.rfc2865\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("radius.dictionary_files"));
        assert_eq!(d.load("ATTRIBUTE Foo\n").unwrap_err().line, 1);
        assert!(d.load("BEGIN-VENDOR Nobody\n").unwrap_err().message.contains("no VENDOR"));
        assert!(d.load("VENDOR A 1\nBEGIN-VENDOR A\n").unwrap_err().message.contains("never ended"));
        assert!(d.is_empty(), "a refused text leaves nothing behind");
    }

    /// Every dictionary Debian's freeradius-common ships parses, or is
    /// refused for `$INCLUDE` (the top-level `dictionary` files).
    #[test]
    fn debian_freeradius_dictionaries_parse_or_are_refused_clearly() {
        let Ok(entries) = std::fs::read_dir("/usr/share/freeradius") else {
            panic!("/usr/share/freeradius is missing: install freeradius-common (tests/run.sh does)");
        };
        let mut parsed = 0;
        let mut refused = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string();
            if !name.starts_with("dictionary") {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else { continue };
            // Files after their vendor's definitions: VENDOR lines are in the file itself.
            let mut d = Dictionary::builtin();
            match d.load(&text) {
                Ok(()) => parsed += 1,
                Err(e) if e.message.contains("$INCLUDE") || e.message.contains("no VENDOR") => refused.push(name),
                Err(e) => panic!("{name}: {e}"),
            }
        }
        eprintln!("{parsed} dictionaries parsed; refused: {refused:?}");
        assert!(parsed > 100, "only {parsed} dictionaries parsed; refused: {refused:?}");
        assert!(refused.len() < 20, "refused: {refused:?}");
    }
}
