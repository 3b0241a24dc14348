//! What a type's `Deserialize` impl asks for, learned by asking it: a deserializer that only
//! listens records which shape the impl requests (a struct and its field names, a map) and
//! declines, so nothing is parsed.

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};

/// The shape a type's `Deserialize` impl requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DeclaredShape {
    /// A struct, with the field names it reads (as the client sends them: renames applied).
    Struct(&'static [&'static str]),
    /// A map.
    Map,
    /// Anything else (a sequence, a scalar, or whatever `deserialize_any` decides).
    Other,
}

impl DeclaredShape {
    pub(crate) fn of<T: DeserializeOwned>() -> Self {
        let mut shape = DeclaredShape::Other;
        let _ = T::deserialize(Listener(&mut shape));
        shape
    }

    /// The struct's field names (none for other shapes).
    pub(crate) fn field_names(self) -> &'static [&'static str] {
        match self {
            DeclaredShape::Struct(fields) => fields,
            DeclaredShape::Map | DeclaredShape::Other => &[],
        }
    }

    /// Whether only a JSON object can be the value (serde would also take a struct from an
    /// array of its fields in order, which no client of a JSON API means).
    pub(crate) fn wants_object(self) -> bool {
        matches!(self, DeclaredShape::Struct(_) | DeclaredShape::Map)
    }
}

struct Listener<'a>(&'a mut DeclaredShape);

impl<'de> Deserializer<'de> for Listener<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("only listening"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = DeclaredShape::Struct(fields);
        Err(de::Error::custom("only listening"))
    }

    fn deserialize_map<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        *self.0 = DeclaredShape::Map;
        Err(de::Error::custom("only listening"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Input {
        project_id: String,
    }

    #[test]
    fn shapes_are_read_off_the_deserialize_impl() {
        assert_eq!(
            DeclaredShape::of::<Input>(),
            DeclaredShape::Struct(&["projectId"])
        );
        assert_eq!(
            DeclaredShape::of::<HashMap<String, u8>>(),
            DeclaredShape::Map
        );
        assert_eq!(DeclaredShape::of::<Vec<u8>>(), DeclaredShape::Other);
        assert!(!DeclaredShape::of::<serde_json::Value>().wants_object());
    }
}
