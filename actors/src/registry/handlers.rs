//! Actor glue for [`RegistryActor`].

use std::sync::Arc;
use std::time::SystemTime;

use actix::prelude::*;

use super::messages::{AddClient, RemoveClient, SetFrozen};
use super::RegistryActor;

impl Actor for RegistryActor {
    type Context = Context<Self>;

    fn started(&mut self, _ctx: &mut Self::Context) {
        for spec in std::mem::take(&mut self.initial) {
            self.add_postgres(spec);
        }
        self.loaded = true;
        self.publish();
    }
}

impl Supervised for RegistryActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        tracing::warn!("registry actor restarting; keeping its clients");
        self.publish();
    }
}

impl Handler<AddClient> for RegistryActor {
    type Result = ();

    fn handle(&mut self, msg: AddClient, _: &mut Context<Self>) {
        self.add_postgres(msg.0);
        self.publish();
    }
}

impl Handler<RemoveClient> for RegistryActor {
    type Result = bool;

    fn handle(&mut self, msg: RemoveClient, _: &mut Context<Self>) -> bool {
        let Some(entry) = self.clients.remove(&msg.0) else {
            return false;
        };
        entry.arbiter.stop();
        self.publish();
        true
    }
}

impl Handler<SetFrozen> for RegistryActor {
    type Result = bool;

    fn handle(&mut self, msg: SetFrozen, _: &mut Context<Self>) -> bool {
        let Some(entry) = self.clients.get_mut(&msg.name) else {
            return false;
        };
        let mut handle = (*entry.handle).clone();
        let changed = if msg.frozen {
            handle.lifecycle.freeze(msg.reason, SystemTime::now())
        } else {
            handle.lifecycle.unfreeze()
        };
        if changed {
            entry.handle = Arc::new(handle);
            self.publish();
        }
        true
    }
}
