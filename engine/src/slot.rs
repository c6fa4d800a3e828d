//! A value of any type, kept once with an object by the layer above it: the Socket.IO
//! server's state with an engine.io session, the application's with a socket.

use std::{any::Any, sync::OnceLock};

/// One value, set once.
#[derive(Default)]
pub(crate) struct Slot(OnceLock<Box<dyn Any + Send + Sync>>);

impl Slot {
    /// Keeps `value`; `Err` gives it back when the slot already holds one.
    pub(crate) fn set<T: Any + Send + Sync>(&self, value: T) -> Result<(), T> {
        let mut value = Some(value);
        let _set = self.0.get_or_init(|| Box::new(value.take()));
        match value {
            None => Ok(()),
            Some(value) => Err(value),
        }
    }

    /// The value kept, if it is a `T`.
    pub(crate) fn get<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.0
            .get()
            .and_then(|value| value.downcast_ref::<Option<T>>())
            .and_then(Option::as_ref)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_keeps_its_first_value_of_its_type() {
        let slot = Slot::default();
        assert_eq!(slot.get::<u32>(), None);
        assert_eq!(slot.set(7u32), Ok(()));
        assert_eq!(slot.set(8u32), Err(8));
        assert_eq!(slot.get::<u32>(), Some(&7));
        assert_eq!(slot.get::<String>(), None);
    }
}
