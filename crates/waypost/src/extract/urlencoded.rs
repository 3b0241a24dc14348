//! The `application/x-www-form-urlencoded` format — query strings and form bodies — read into
//! serde types strictly: a key given more than once fills a sequence field (`?tag=a&tag=b` into
//! a `Vec`, the `form`, `explode` style OpenAPI documents for query arrays and the TypeScript
//! client sends) and is refused for any other field; an empty value is an empty string, so
//! `?page=` is a bad number, never a silent `None`.
//!
//! Neither existing crate does both: `serde_urlencoded` refuses a repeated struct field
//! even when it is a sequence, and `serde_html_form` reads `field=` as `None` for every optional
//! field, which turns a client's mistake into a default. Pairs are still split and decoded by
//! `form_urlencoded`, and each key and value is read the way `serde_urlencoded` reads one; a
//! whole target that is a sequence of pairs (`Vec<(String, String)>`) gets every pair as sent.
//!
//! A limit shared with every format that does not describe itself: behind `#[serde(flatten)]`
//! and in untagged or internally tagged enums, values are buffered without their type, so a
//! list field there needs two values or more and a repeated single field is reported for the
//! whole input. Plain fields have neither problem.

use std::{borrow::Cow, collections::HashMap};

use serde::de::{
    self,
    value::{CowStrDeserializer, Error, MapDeserializer, SeqDeserializer},
    DeserializeOwned, IntoDeserializer, Visitor,
};

use crate::{
    short_quotes::{shorten_quoted_values, shorten_value},
    ApiError, DEFAULT_MAX_FIELDS,
};

/// What a value given for a field that takes one is told, beside the field's name.
const REPEATED: &str = "is given more than once";

/// Reads `input` (a query string without its `?`, or a form body) into `T`. What does not fit
/// is 400 `validation_failed`, naming the field at fault in `details` — or `whole` ("query",
/// "form") when no one field is.
pub(crate) fn from_bytes<T: DeserializeOwned>(input: &[u8], whole: &str) -> Result<T, ApiError> {
    let max_pairs = crate::context::with_current(|context| {
        context.map_or(DEFAULT_MAX_FIELDS, |context| context.max_fields.get())
    });
    if has_more_pairs_than(input, max_pairs) {
        return Err(ApiError::invalid_field(
            whole,
            format!("has more than {max_pairs} fields"),
        ));
    }
    read(input).map_err(|error| {
        let path = error.path().to_string();
        let (field, problem) = described(&error.into_inner().to_string(), path, whole);
        ApiError::invalid_field(&field, problem)
    })
}

/// `input` read into `T`; the error's path names the field at fault.
fn read<T: DeserializeOwned>(input: &[u8]) -> Result<T, serde_path_to_error::Error<Error>> {
    serde_path_to_error::deserialize(Whole(input))
}

/// Whether `input` holds more than `max_pairs` pairs (the route's `max_fields`, by default
/// [`DEFAULT_MAX_FIELDS`]): counted on the raw bytes, before anything is decoded or kept.
/// Grouping keeps every pair until the target has taken them, so without a cap a 1 MiB form
/// of `a&a&a…` would hold some twenty times its size.
fn has_more_pairs_than(input: &[u8], max_pairs: usize) -> bool {
    input
        .split(|&byte| byte == b'&')
        .filter(|pair| !pair.is_empty())
        .nth(max_pairs)
        .is_some()
}

/// The whole input: a map from each key to its values; a sequence or tuple of pairs is every
/// pair as sent, in order; unit is no pair at all.
struct Whole<'a>(&'a [u8]);

impl Whole<'_> {
    fn pairs(&self) -> impl Iterator<Item = (Values<'_>, Values<'_>)> {
        url::form_urlencoded::parse(self.0)
            .map(|(key, value)| (Values::One(key), Values::One(value)))
    }
}

impl<'de> de::Deserializer<'de> for Whole<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        // Keys are read as values are, so a `HashMap<u32, _>` has its keys parsed.
        let fields = grouped(self.0).into_iter();
        MapDeserializer::new(fields.map(|(key, values)| (Values::One(key), values)))
            .deserialize_any(visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        MapDeserializer::new(self.pairs()).deserialize_seq(visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        MapDeserializer::new(self.pairs()).end()?;
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit_struct newtype_struct tuple_struct map struct enum identifier ignored_any
    }
}

/// The parameter at fault and what is wrong with it, in words for the client: serde's message
/// names the field itself when it is missing, and the standard library's integer errors are
/// said as what the value must be.
pub(super) fn described(message: &str, path: String, whole: &str) -> (String, String) {
    let quoted = |prefix: &str| {
        message
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('`'))
            .and_then(|rest| rest.split_once('`'))
            .map(|(name, _)| name.to_owned())
    };
    if let Some(field) = quoted("missing field ") {
        // Missing from a nested object (JSON): named under it, its path cut short as any path
        // is (a map's keys on the way are the client's own).
        let field = if path.is_empty() || path == "." || path == "?" {
            field
        } else {
            format!("{}.{field}", shorten_value(&path))
        };
        return (field, "is required".to_owned());
    }
    // serde_path_to_error says `?` for a map key it could not read.
    let field = if path.is_empty() || path == "." || path == "?" {
        whole.to_owned()
    } else {
        // A map's keys are the client's own.
        shorten_value(&path).into_owned()
    };
    let problem = match message {
        "invalid digit found in string" | "cannot parse integer from empty string" => {
            "must be a whole number".to_owned()
        }
        "number too large to fit in target type" | "number too small to fit in target type" => {
            "is out of range".to_owned()
        }
        "invalid float literal" => "must be a number".to_owned(),
        "provided string was not `true` or `false`" => "must be true or false".to_owned(),
        other => shorten_quoted_values(other).replace("variant", "value"),
    };
    (field, problem)
}

/// The pairs of `input`, each key once with all of its values, in the order keys first appear.
fn grouped(input: &[u8]) -> Vec<(Cow<'_, str>, Values<'_>)> {
    /// Past this many keys, finding one by looking through them all would make a long body's
    /// reading quadratic: an index takes over.
    const SCANNED_KEYS: usize = 8;
    let mut fields: Vec<(Cow<'_, str>, Values<'_>)> = Vec::new();
    let mut index: HashMap<Cow<'_, str>, usize> = HashMap::new();
    for (key, value) in url::form_urlencoded::parse(input) {
        let known = if fields.len() <= SCANNED_KEYS {
            fields.iter().position(|(name, _)| *name == key)
        } else {
            if index.is_empty() {
                index.extend(
                    fields
                        .iter()
                        .enumerate()
                        .map(|(at, (name, _))| (name.clone(), at)),
                );
            }
            index.get(&key).copied()
        };
        match known {
            Some(at) => fields[at].1.push(value),
            None => {
                if !index.is_empty() {
                    index.insert(key.clone(), fields.len());
                }
                fields.push((key, Values::One(value)));
            }
        }
    }
    fields
}

/// The values one key was given, in order; almost always one.
enum Values<'a> {
    One(Cow<'a, str>),
    Many(Vec<Cow<'a, str>>),
}

impl<'a> Values<'a> {
    fn push(&mut self, value: Cow<'a, str>) {
        match self {
            Values::One(first) => {
                let first = std::mem::take(first);
                *self = Values::Many(vec![first, value]);
            }
            Values::Many(values) => values.push(value),
        }
    }

    /// The one value, or the error for a field that takes one but was given several.
    fn single(self) -> Result<Cow<'a, str>, Error> {
        match self {
            Values::One(value) => Ok(value),
            Values::Many(_) => Err(de::Error::custom(REPEATED)),
        }
    }

    fn into_seq(self) -> SeqDeserializer<std::vec::IntoIter<Values<'a>>, Error> {
        let values = match self {
            Values::One(value) => vec![Values::One(value)],
            Values::Many(values) => values.into_iter().map(Values::One).collect(),
        };
        SeqDeserializer::new(values.into_iter())
    }
}

impl<'de> IntoDeserializer<'de, Error> for Values<'_> {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

/// A number or a `bool` parsed from the one value, with the standard library's words for what
/// is wrong with it ("invalid digit found in string").
macro_rules! parsed {
    ($($method:ident => $visit:ident: $type:ty),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            let value = self.single()?;
            visitor.$visit(value.parse::<$type>().map_err(de::Error::custom)?)
        }
    )*};
}

/// Text-like targets read the one value as it is.
macro_rules! as_text {
    ($($method:ident),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            CowStrDeserializer::new(self.single()?).deserialize_any(visitor)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Values<'_> {
    type Error = Error;

    /// One value is text; several are a sequence of texts (what `#[serde(flatten)]` and untyped
    /// targets see).
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Values::One(value) => CowStrDeserializer::new(value).deserialize_any(visitor),
            many @ Values::Many(_) => many.into_seq().deserialize_any(visitor),
        }
    }

    parsed! {
        deserialize_bool => visit_bool: bool,
        deserialize_i8 => visit_i8: i8,
        deserialize_i16 => visit_i16: i16,
        deserialize_i32 => visit_i32: i32,
        deserialize_i64 => visit_i64: i64,
        deserialize_i128 => visit_i128: i128,
        deserialize_u8 => visit_u8: u8,
        deserialize_u16 => visit_u16: u16,
        deserialize_u32 => visit_u32: u32,
        deserialize_u64 => visit_u64: u64,
        deserialize_u128 => visit_u128: u128,
        deserialize_f32 => visit_f32: f32,
        deserialize_f64 => visit_f64: f64,
    }

    as_text! {
        deserialize_char, deserialize_str, deserialize_string, deserialize_bytes,
        deserialize_byte_buf, deserialize_identifier, deserialize_unit, deserialize_map,
    }

    /// A given key is a present value, even an empty one: `?page=` is a bad page, not no page.
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.into_seq().deserialize_any(visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_map(visitor)
    }

    /// A unit variant named by the one value (`?sort=title`).
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_enum(UnitVariant(self.single()?))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

/// A value names an enum's variant; only a unit variant can be given that way.
struct UnitVariant<'a>(Cow<'a, str>);

impl<'de, 'a> de::EnumAccess<'de> for UnitVariant<'a> {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<S: de::DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self), Error> {
        let variant = seed.deserialize(CowStrDeserializer::new(self.0.clone()))?;
        Ok((variant, self))
    }
}

impl<'de> de::VariantAccess<'de> for UnitVariant<'_> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        Ok(())
    }

    fn newtype_variant_seed<S: de::DeserializeSeed<'de>>(self, _: S) -> Result<S::Value, Error> {
        Err(de::Error::custom("expected unit variant"))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _: usize, _: V) -> Result<V::Value, Error> {
        Err(de::Error::custom("expected unit variant"))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Error> {
        Err(de::Error::custom("expected unit variant"))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde::Deserialize;

    use super::{from_bytes, read as read_pairs, REPEATED};
    use crate::DEFAULT_MAX_FIELDS as MAX_PAIRS;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase")]
    enum Sort {
        CreatedAt,
        Title,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Listing {
        page: Option<u32>,
        #[serde(default)]
        tag: Vec<String>,
        sort: Option<Sort>,
        q: Option<String>,
        exact: Option<bool>,
    }

    fn read<T: serde::de::DeserializeOwned>(input: &str) -> Result<T, (String, String)> {
        read_pairs(input.as_bytes())
            .map_err(|error| (error.path().to_string(), error.into_inner().to_string()))
    }

    #[test]
    fn repeated_keys_fill_sequences_in_order() {
        let listing: Listing = read("tag=rust&page=2&tag=web&tag=&sort=title").unwrap();
        assert_eq!(
            listing,
            Listing {
                page: Some(2),
                tag: vec!["rust".into(), "web".into(), String::new()],
                sort: Some(Sort::Title),
                q: None,
                exact: None,
            }
        );
        let one: Listing = read("tag=only").unwrap();
        assert_eq!(one.tag, ["only"]);
        let none: Listing = read("").unwrap();
        assert_eq!(none.tag, Vec::<String>::new());
        let numbers: HashMap<String, Vec<u8>> = read("n=1&n=2&m=3").unwrap();
        assert_eq!(numbers["n"], [1, 2]);
        assert_eq!(numbers["m"], [3]);
    }

    #[test]
    fn a_repeated_key_for_a_single_value_is_refused_by_name() {
        for input in [
            "page=1&page=2",
            "q=a&q=b",
            "sort=title&sort=title",
            "exact=true&exact=false",
        ] {
            let (path, message) = read::<Listing>(input).unwrap_err();
            assert_eq!(message, REPEATED, "{input}");
            assert_eq!(path, input.split('=').next().unwrap(), "{input}");
        }
        let (path, message) = read::<HashMap<String, String>>("a=1&b=2&a=3").unwrap_err();
        assert_eq!((path.as_str(), message.as_str()), ("a", REPEATED));
    }

    #[test]
    fn an_empty_value_is_text_not_an_absent_one() {
        let listing: Listing = read("q=").unwrap();
        assert_eq!(listing.q.as_deref(), Some(""));
        let (path, message) = read::<Listing>("page=").unwrap_err();
        assert_eq!(
            (path.as_str(), message.as_str()),
            ("page", "cannot parse integer from empty string")
        );
        let (path, _) = read::<Listing>("sort=").unwrap_err();
        assert_eq!(path, "sort");
        let (path, _) = read::<Listing>("exact=").unwrap_err();
        assert_eq!(path, "exact");
    }

    #[test]
    fn values_are_percent_decoded_and_plus_is_a_space() {
        let listing: Listing = read("q=caf%C3%A9+au+lait&tag=a%26b&t%61g=c").unwrap();
        assert_eq!(listing.q.as_deref(), Some("café au lait"));
        assert_eq!(listing.tag, ["a&b", "c"]);
    }

    #[test]
    fn keys_are_parsed_as_values_are_and_whole_targets_read_as_serde_urlencoded_does() {
        let numbered: std::collections::BTreeMap<u32, String> = read("2=b&1=a").unwrap();
        assert_eq!(
            numbered.into_iter().collect::<Vec<_>>(),
            [(1, "a".into()), (2, "b".into())]
        );
        let (_, message) = read::<HashMap<u32, String>>("x=a").unwrap_err();
        assert_eq!(message, "invalid digit found in string");
        // Every pair as sent, repeated keys and their order kept.
        let pairs: Vec<(String, String)> = read("a=1&b=2&a=3").unwrap();
        assert_eq!(
            pairs,
            [("a", "1"), ("b", "2"), ("a", "3")].map(|(k, v)| (k.into(), v.into()))
        );
        read::<()>("").unwrap();
        assert!(read::<()>("a=1").is_err());
    }

    #[test]
    fn only_a_unit_variant_can_be_named_by_a_value() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        enum Shape {
            Dot,
            Circle(u32),
        }
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Drawing {
            shape: Shape,
        }
        assert!(read::<Drawing>("shape=Dot").is_ok());
        let (path, message) = read::<Drawing>("shape=Circle").unwrap_err();
        assert_eq!(
            (path.as_str(), message.as_str()),
            ("shape.Circle", "expected unit variant")
        );
    }

    #[test]
    fn many_keys_are_grouped_past_the_scanned_few() {
        let input: String = (0..40)
            .map(|n| format!("k{}={n}", n % 20))
            .collect::<Vec<_>>()
            .join("&");
        let grouped: HashMap<String, Vec<u32>> = read(&input).unwrap();
        assert_eq!(grouped.len(), 20);
        for key in 0..20u32 {
            assert_eq!(grouped[&format!("k{key}")], [key, key + 20]);
        }
        let (path, message) = read::<HashMap<String, u32>>(&input).unwrap_err();
        assert_eq!((path.as_str(), message.as_str()), ("k0", REPEATED));
    }

    #[test]
    fn more_pairs_than_the_cap_are_refused_before_anything_is_kept() {
        let at_cap = vec!["a=1"; MAX_PAIRS].join("&");
        let read: Vec<(String, String)> = from_bytes(at_cap.as_bytes(), "form").unwrap();
        assert_eq!(read.len(), MAX_PAIRS);
        // Empty pairs (`&&`) are not counted.
        let padded = format!("&&{at_cap}&&");
        assert!(from_bytes::<Vec<(String, String)>>(padded.as_bytes(), "form").is_ok());
        let over = format!("{at_cap}&b");
        let error = from_bytes::<Vec<(String, String)>>(over.as_bytes(), "form").unwrap_err();
        assert_eq!(error.code(), "validation_failed");
        assert_eq!(
            error.details().cloned(),
            Some(serde_json::json!({ "form": ["has more than 1000 fields"] }))
        );
    }
}
