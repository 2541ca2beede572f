//! `#[topic("name")]`: declares the type of the messages on a topic. The type gets a JSON
//! Schema (schemars, through the SDK) that the host checks every send against, and a
//! `reprise_guest::Topic` impl for typed `recv`/`send`.

use proc_macro2::TokenStream as TokenStream2;
use quote::quote;
use syn::{Item, LitStr};

pub(crate) fn expand(name: LitStr, item: Item) -> syn::Result<TokenStream2> {
    let (ident, generics) = match &item {
        Item::Struct(s) => (&s.ident, &s.generics),
        Item::Enum(e) => (&e.ident, &e.generics),
        other => {
            return Err(syn::Error::new_spanned(
                other,
                "#[topic] goes on a struct or an enum: the type of the topic's messages",
            ));
        }
    };
    if !generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            generics,
            "a topic's message type cannot be generic: the host checks one schema per topic",
        ));
    }
    if name.value().is_empty() {
        return Err(syn::Error::new_spanned(
            &name,
            "a topic's name cannot be empty",
        ));
    }
    let type_name = ident.to_string();
    Ok(quote! {
        #[derive(::reprise_guest::__private::schemars::JsonSchema)]
        #[schemars(crate = "::reprise_guest::__private::schemars")]
        #item

        impl ::reprise_guest::Topic for #ident {
            const NAME: &'static str = #name;
        }

        ::reprise_guest::__private::inventory::submit! {
            ::reprise_guest::__private::TopicDef {
                name: #name,
                type_name: #type_name,
                schema: ::reprise_guest::__private::topic_schema::<#ident>,
                check: ::reprise_guest::__private::topic_check::<#ident>,
            }
        }
    })
}
