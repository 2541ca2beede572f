//! The procedural macros of `reprise-guest`: `#[workflow]`, `#[step]` and `export!`.
//!
//! Use them through `reprise_guest` (`use reprise_guest::prelude::*`), whose documentation
//! describes them; the expansions call into `::reprise_guest::__private`.
//!
//! * `#[step]` keeps the body in a hidden function `__reprise_step_body_<fn>`, replaces the
//!   function with a wrapper returning `Result<T, StepError>` that calls the body through the
//!   host's step protocol, and emits a hidden `const __reprise_step_<fn>: StepDef` (name,
//!   options, and an entry point that runs the body from JSON).
//! * `#[workflow]` leaves the function alone and emits a hidden
//!   `const __reprise_workflow_<fn>: WorkflowDef` (name, entry point from JSON input).
//! * `#[topic("name")]` derives a JSON Schema for a message type and registers it (`topic.rs`).
//! * `export!(workflows = [..], steps = [..])` gathers those consts and implements the
//!   component's exports with them.

mod topic;

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    Attribute, FnArg, GenericArgument, Ident, ItemFn, Lit, LitStr, Pat, Path, PathArguments,
    ReturnType, Token, Type, Visibility, bracketed, parse_macro_input,
};

/// Marks a function as a durable step. See `reprise_guest::step`.
#[proc_macro_attribute]
pub fn step(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut options = StepOptions::default();
    let parser = syn::meta::parser(|meta| options.parse(meta));
    parse_macro_input!(attr with parser);
    let func = parse_macro_input!(item as ItemFn);
    expand_step(options, func)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Marks a function as a workflow. See `reprise_guest::workflow`.
#[proc_macro_attribute]
pub fn workflow(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut name: Option<LitStr> = None;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("name") {
            name = Some(meta.value()?.parse()?);
            Ok(())
        } else {
            Err(meta.error("unknown workflow option; the only one is `name = \"...\"`"))
        }
    });
    parse_macro_input!(attr with parser);
    let func = parse_macro_input!(item as ItemFn);
    expand_workflow(name, func)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Declares the type of a topic's messages. See `reprise_guest::topic`.
#[proc_macro_attribute]
pub fn topic(attr: TokenStream, item: TokenStream) -> TokenStream {
    let name = parse_macro_input!(attr as LitStr);
    let item = parse_macro_input!(item as syn::Item);
    topic::expand(name, item)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Registers workflows and steps and implements the component's exports. See
/// `reprise_guest::export`.
#[proc_macro]
pub fn export(input: TokenStream) -> TokenStream {
    let lists = parse_macro_input!(input as ExportLists);
    expand_export(lists).into()
}

// ---------------------------------------------------------------------------------------------
// Shared analysis of a function signature.

/// What the expansions need to know about a marked function.
struct Signature {
    /// Argument names as the wrapper declares them: the user's identifier where the pattern is
    /// one, otherwise a generated name.
    names: Vec<Ident>,
    types: Vec<Type>,
    /// The success type: `T` of `Result<T, E>`, or the whole return type.
    output: Type,
    /// Whether the function returns a `Result` (judged by the return type's last path segment).
    fallible: bool,
}

fn analyze(func: &ItemFn, what: &str) -> syn::Result<Signature> {
    let sig = &func.sig;
    if let Some(asyncness) = &sig.asyncness {
        return Err(syn::Error::new(
            asyncness.span(),
            format!("a {what} cannot be async"),
        ));
    }
    if let Some(unsafety) = &sig.unsafety {
        return Err(syn::Error::new(
            unsafety.span(),
            format!("a {what} cannot be unsafe"),
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(syn::Error::new(
            sig.generics.span(),
            format!("a {what} cannot be generic: its types cross the host boundary as JSON"),
        ));
    }
    if let Some(variadic) = &sig.variadic {
        return Err(syn::Error::new(
            variadic.span(),
            format!("a {what} cannot be variadic"),
        ));
    }
    let mut names = Vec::new();
    let mut types = Vec::new();
    for (i, arg) in sig.inputs.iter().enumerate() {
        match arg {
            FnArg::Receiver(r) => {
                return Err(syn::Error::new(
                    r.span(),
                    format!("a {what} is a free function; it cannot take `self`"),
                ));
            }
            FnArg::Typed(pt) => {
                if let Some(borrow) = first_borrow(pt.ty.to_token_stream()) {
                    return Err(syn::Error::new(
                        borrow.span(),
                        format!(
                            "a {what}'s arguments are owned values: they are decoded from JSON \
                             (recorded, replayed, or sent to a fresh instance), so they cannot \
                             borrow; use `String` instead of `&str`, `Vec<T>` instead of `&[T]`, \
                             `T` instead of `&T`"
                        ),
                    ));
                }
                let name = match &*pt.pat {
                    Pat::Ident(p) if p.subpat.is_none() && p.by_ref.is_none() => p.ident.clone(),
                    _ => format_ident!("__reprise_arg{}", i),
                };
                names.push(name);
                types.push((*pt.ty).clone());
            }
        }
    }
    let (output, fallible) = match &sig.output {
        ReturnType::Default => (syn::parse_quote!(()), false),
        ReturnType::Type(_, ty) => match result_ok_type(ty) {
            Some(ok) => (ok, true),
            None => ((**ty).clone(), false),
        },
    };
    Ok(Signature {
        names,
        types,
        output,
        fallible,
    })
}

/// The first `&` in a type's tokens, nested ones included (`Vec<&str>`, `Option<&T>`).
fn first_borrow(tokens: TokenStream2) -> Option<proc_macro2::Punct> {
    tokens.into_iter().find_map(|tree| match tree {
        proc_macro2::TokenTree::Punct(punct) if punct.as_char() == '&' => Some(punct),
        proc_macro2::TokenTree::Group(group) => first_borrow(group.stream()),
        _ => None,
    })
}

/// `T` if `ty` is a path type named `Result` with `T` as its first type argument
/// (`Result<T, E>`, `std::result::Result<T, E>`, `reprise_guest::Result<T>`, `io::Result<T>`).
fn result_ok_type(ty: &Type) -> Option<Type> {
    let Type::Path(tp) = ty else { return None };
    if tp.qself.is_some() {
        return None;
    }
    let last = tp.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    args.args.iter().find_map(|a| match a {
        GenericArgument::Type(t) => Some(t.clone()),
        _ => None,
    })
}

/// The argument tuple as a value and as a pattern (`(a, b)`, `(a,)`), and its type, which is
/// also the JSON array a step's arguments travel as. No arguments travel as `[]`, hence
/// `[(); 0]`, which serde encodes as an empty array (the unit type would be `null`).
fn args_tuple(names: &[Ident], types: &[Type]) -> (TokenStream2, TokenStream2, TokenStream2) {
    if names.is_empty() {
        (quote!([(); 0]), quote!(_), quote!([(); 0]))
    } else {
        (
            quote!((#(#names,)*)),
            quote!((#(#names,)*)),
            quote!((#(#types,)*)),
        )
    }
}

/// The attributes that must also apply to the hidden items generated next to the function:
/// conditional compilation and lint levels.
fn shared_attrs(attrs: &[Attribute]) -> Vec<&Attribute> {
    attrs
        .iter()
        .filter(|a| {
            let p = a.path();
            p.is_ident("cfg") || p.is_ident("cfg_attr") || p.is_ident("allow")
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// #[step]

/// The options of `#[step(...)]`, DBOS's defaults unless given.
struct StepOptions {
    name: Option<LitStr>,
    retries: bool,
    max_attempts: u32,
    interval_ms: u64,
    backoff_rate: f64,
    isolated: bool,
    /// Each attempt's time limit; 0 for none. A step with one runs isolated.
    timeout_ms: u64,
}

impl Default for StepOptions {
    fn default() -> Self {
        StepOptions {
            name: None,
            retries: true,
            max_attempts: 3,
            interval_ms: 1000,
            backoff_rate: 2.0,
            isolated: false,
            timeout_ms: 0,
        }
    }
}

impl StepOptions {
    fn parse(&mut self, meta: syn::meta::ParseNestedMeta<'_>) -> syn::Result<()> {
        let key = meta
            .path
            .get_ident()
            .map(|i| i.to_string())
            .unwrap_or_default();
        match key.as_str() {
            "name" => self.name = Some(meta.value()?.parse()?),
            "retries" => self.retries = meta.value()?.parse::<syn::LitBool>()?.value,
            "max_attempts" => {
                let lit: syn::LitInt = meta.value()?.parse()?;
                let n: u32 = lit.base10_parse()?;
                if n == 0 {
                    return Err(syn::Error::new(
                        lit.span(),
                        "max_attempts counts the first attempt: it must be at least 1",
                    ));
                }
                self.max_attempts = n;
            }
            "interval_ms" => {
                self.interval_ms = meta.value()?.parse::<syn::LitInt>()?.base10_parse()?
            }
            "backoff_rate" => {
                let lit: Lit = meta.value()?.parse()?;
                let rate: f64 = match &lit {
                    Lit::Float(f) => f.base10_parse()?,
                    Lit::Int(i) => i.base10_parse()?,
                    _ => return Err(syn::Error::new(lit.span(), "expected a number")),
                };
                if !(rate.is_finite() && rate > 0.0) {
                    return Err(syn::Error::new(
                        lit.span(),
                        "backoff_rate must be a positive number",
                    ));
                }
                self.backoff_rate = rate;
            }
            "timeout_ms" => {
                let lit: syn::LitInt = meta.value()?.parse()?;
                let ms: u64 = lit.base10_parse()?;
                if ms == 0 {
                    return Err(syn::Error::new(
                        lit.span(),
                        "timeout_ms must be at least 1 (leave it out for no limit)",
                    ));
                }
                self.timeout_ms = ms;
                // Interrupting code leaves its memory in any state: only a fresh instance,
                // thrown away with it, can be interrupted safely.
                self.isolated = true;
            }
            "isolated" => {
                self.isolated = if meta.input.peek(Token![=]) {
                    meta.value()?.parse::<syn::LitBool>()?.value
                } else {
                    true
                }
            }
            _ => {
                return Err(meta.error(
                    "unknown step option; expected name, retries, max_attempts, interval_ms, \
                     backoff_rate, isolated or timeout_ms",
                ));
            }
        }
        Ok(())
    }
}

fn expand_step(options: StepOptions, func: ItemFn) -> syn::Result<TokenStream2> {
    if let Some(constness) = &func.sig.constness {
        return Err(syn::Error::new(
            constness.span(),
            "a step cannot be const: it calls the host",
        ));
    }
    let sig = analyze(&func, "step")?;
    let ItemFn {
        attrs,
        vis,
        sig: fn_sig,
        block,
    } = &func;
    let ident = &fn_sig.ident;
    let plain = ident.unraw();
    let def = format_ident!("__reprise_step_{}", plain);
    let body_fn = format_ident!("__reprise_step_body_{}", plain);
    let name = options
        .name
        .clone()
        .unwrap_or_else(|| LitStr::new(&plain.to_string(), ident.span()));
    let shared = shared_attrs(attrs);

    let Signature {
        names,
        types,
        output,
        fallible,
    } = &sig;
    let (tuple_value, tuple_pat, tuple_type) = args_tuple(names, types);
    // The body as a call on the argument tuple, always producing a `Result`.
    let call_body = if *fallible {
        quote!(#body_fn(#(#names),*))
    } else {
        quote!(::core::result::Result::<_, ::core::convert::Infallible>::Ok(#body_fn(#(#names),*)))
    };
    let caller = if options.isolated {
        quote!(call_isolated_step)
    } else {
        quote!(call_step)
    };
    let arg_check = if options.isolated {
        quote!(assert_isolated_step_arg)
    } else {
        quote!(assert_step_arg)
    };
    let checks = types
        .iter()
        .map(|ty| quote_spanned!(ty.span()=> ::reprise_guest::__private::#arg_check::<#ty>();))
        .chain(std::iter::once(quote_spanned!(output.span()=>
            ::reprise_guest::__private::assert_step_output::<#output>();
        )));

    // The body function keeps the user's signature (patterns, return type) and body.
    let mut inner_sig = fn_sig.clone();
    inner_sig.ident = body_fn.clone();
    let wrapper_inputs = names.iter().zip(types).map(|(n, t)| quote!(#n: #t));
    let fn_token = &fn_sig.fn_token;

    let StepOptions {
        retries,
        max_attempts,
        interval_ms,
        backoff_rate,
        isolated,
        timeout_ms,
        ..
    } = options;
    Ok(quote! {
        #(#attrs)*
        #vis #fn_token #ident(#(#wrapper_inputs),*)
            -> ::core::result::Result<#output, ::reprise_guest::StepError>
        {
            ::reprise_guest::__private::#caller(&#def, #tuple_value, |#tuple_pat| #call_body)
        }

        #[doc(hidden)]
        #[allow(non_upper_case_globals, dead_code)]
        #(#shared)*
        #vis const #def: ::reprise_guest::__private::StepDef = ::reprise_guest::__private::StepDef {
            name: #name,
            config: ::reprise_guest::__private::StepConfig {
                retries_allowed: #retries,
                max_attempts: #max_attempts,
                interval_ms: #interval_ms,
                backoff_rate: #backoff_rate,
                isolated: #isolated,
                timeout_ms: #timeout_ms,
            },
            run: {
                fn run(
                    input: &[u8],
                ) -> ::core::result::Result<
                    ::std::vec::Vec<u8>,
                    ::reprise_guest::__private::BodyError,
                > {
                    #(#checks)*
                    ::reprise_guest::__private::step_entry(
                        #name,
                        input,
                        |#tuple_pat: #tuple_type| #call_body,
                    )
                }
                run
            },
        };

        // Registered where it is defined, so a step left out of `export!` still exists.
        #(#shared)*
        ::reprise_guest::__private::inventory::submit! { #def }

        #[doc(hidden)]
        #[allow(dead_code)]
        #(#shared)*
        #inner_sig #block
    })
}

// ---------------------------------------------------------------------------------------------
// #[workflow]

fn expand_workflow(name: Option<LitStr>, func: ItemFn) -> syn::Result<TokenStream2> {
    let sig = analyze(&func, "workflow")?;
    let ident = &func.sig.ident;
    let plain = ident.unraw();
    let def = format_ident!("__reprise_workflow_{}", plain);
    let name = name.unwrap_or_else(|| LitStr::new(&plain.to_string(), ident.span()));
    let vis: &Visibility = &func.vis;
    let shared = shared_attrs(&func.attrs);
    let Signature {
        types,
        output,
        fallible,
        ..
    } = &sig;
    // Generated names: a user's argument could share the workflow function's name.
    let names: Vec<Ident> = (0..types.len())
        .map(|i| format_ident!("__reprise_arg{}", i))
        .collect();

    // Exactly one argument takes the input as it is; none ignore it; several take an array.
    let decode = match names.len() {
        0 => quote!(let _ = input;),
        1 => {
            let (n, t) = (&names[0], &types[0]);
            quote!(let #n: #t = ::reprise_guest::__private::workflow_input(#name, input)?;)
        }
        _ => quote! {
            let (#(#names,)*): (#(#types,)*) =
                ::reprise_guest::__private::workflow_input(#name, input)?;
        },
    };
    let finish = if *fallible {
        quote!(workflow_result)
    } else {
        quote!(workflow_value)
    };
    let checks = types
        .iter()
        .map(|ty| quote_spanned!(ty.span()=> ::reprise_guest::__private::assert_workflow_arg::<#ty>();))
        .chain(std::iter::once(quote_spanned!(output.span()=>
            ::reprise_guest::__private::assert_workflow_output::<#output>();
        )));

    Ok(quote! {
        #func

        #[doc(hidden)]
        #[allow(non_upper_case_globals, dead_code)]
        #(#shared)*
        #vis const #def: ::reprise_guest::__private::WorkflowDef =
            ::reprise_guest::__private::WorkflowDef {
                name: #name,
                run: {
                    fn run(
                        input: &[u8],
                    ) -> ::core::result::Result<
                        ::std::vec::Vec<u8>,
                        ::reprise_guest::__private::BodyError,
                    > {
                        #(#checks)*
                        #decode
                        ::reprise_guest::__private::#finish(#ident(#(#names),*))
                    }
                    run
                },
            };

        #(#shared)*
        ::reprise_guest::__private::inventory::submit! { #def }
    })
}

// ---------------------------------------------------------------------------------------------
// export!

/// `workflows = [..], steps = [..]`, in either order; both optional.
struct ExportLists {
    workflows: Vec<Path>,
    steps: Vec<Path>,
}

impl Parse for ExportLists {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut workflows: Option<Vec<Path>> = None;
        let mut steps: Option<Vec<Path>> = None;
        while !input.is_empty() {
            let key: Ident = input.parse()?;
            input.parse::<Token![=]>()?;
            let content;
            bracketed!(content in input);
            let paths: Vec<Path> = Punctuated::<Path, Token![,]>::parse_terminated(&content)?
                .into_iter()
                .collect();
            let slot = match key.to_string().as_str() {
                "workflows" => &mut workflows,
                "steps" => &mut steps,
                _ => {
                    return Err(syn::Error::new(
                        key.span(),
                        "expected `workflows = [...]` or `steps = [...]`",
                    ));
                }
            };
            if slot.is_some() {
                return Err(syn::Error::new(key.span(), format!("`{key}` given twice")));
            }
            *slot = Some(paths);
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(ExportLists {
            workflows: workflows.unwrap_or_default(),
            steps: steps.unwrap_or_default(),
        })
    }
}

/// `a::b::f` → `a::b::__reprise_<kind>_f`, spanned on `f` so a function that is not marked
/// (or is marked as the other kind) is reported where it is listed.
fn registration_path(path: &Path, kind: &str) -> TokenStream2 {
    let mut path = path.clone();
    if let Some(last) = path.segments.last_mut() {
        let span = last.ident.span();
        last.ident = Ident::new(&format!("__reprise_{kind}_{}", last.ident.unraw()), span);
        if !matches!(last.arguments, PathArguments::None) {
            return syn::Error::new(last.arguments.span(), "expected a function's path")
                .into_compile_error();
        }
    }
    quote!(#path)
}

fn expand_export(lists: ExportLists) -> TokenStream2 {
    let workflows = lists
        .workflows
        .iter()
        .map(|p| registration_path(p, "workflow"));
    let steps = lists.steps.iter().map(|p| registration_path(p, "step"));
    let component = Ident::new("__RepriseComponent", Span::call_site());
    quote! {
        const _: () = {
            /// The type the component's exports are implemented on.
            struct #component;

            const WORKFLOWS: &[::reprise_guest::__private::WorkflowDef] = &[#(#workflows),*];
            const STEPS: &[::reprise_guest::__private::StepDef] = &[#(#steps),*];
            const _: () = ::reprise_guest::__private::check_names(WORKFLOWS, STEPS);

            // What `#[step]` and `#[workflow]` registered, with what the lists name.
            fn workflows() -> &'static [::reprise_guest::__private::WorkflowDef] {
                ::reprise_guest::__private::all_workflows(WORKFLOWS)
            }
            fn steps() -> &'static [::reprise_guest::__private::StepDef] {
                ::reprise_guest::__private::all_steps(STEPS)
            }

            impl ::reprise_guest::__bindings::Guest for #component {
                fn run_workflow(
                    name: ::std::string::String,
                    input: ::std::vec::Vec<u8>,
                ) -> ::core::result::Result<
                    ::std::vec::Vec<u8>,
                    ::reprise_guest::__bindings::WorkflowError,
                > {
                    ::reprise_guest::__private::run_workflow(workflows(), name, input)
                }

                fn run_step(
                    name: ::std::string::String,
                    input: ::std::vec::Vec<u8>,
                    attempt: ::reprise_guest::__bindings::AttemptInfo,
                ) -> ::core::result::Result<
                    ::std::vec::Vec<u8>,
                    ::reprise_guest::__bindings::StepError,
                > {
                    ::reprise_guest::__private::run_step(steps(), name, input, attempt)
                }

                fn definitions() -> ::reprise_guest::__bindings::Definitions {
                    ::reprise_guest::__private::definitions(workflows(), steps())
                }
            }

            ::reprise_guest::__bindings::export!(
                #component with_types_in ::reprise_guest::__bindings
            );
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(func: ItemFn) -> String {
        match analyze(&func, "step") {
            Ok(_) => String::new(),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn a_borrowed_argument_is_refused_naming_the_owned_form() {
        for func in [
            syn::parse_quote! { fn f(name: &str) -> u32 { 0 } },
            syn::parse_quote! { fn f(names: Vec<&str>) {} },
            syn::parse_quote! { fn f(n: u32, item: Option<&'static Item>) {} },
        ] {
            let message = error_of(func);
            assert!(
                message.contains("arguments are owned values")
                    && message.contains("use `String` instead of `&str`"),
                "{message:?}"
            );
        }
    }

    #[test]
    fn owned_arguments_are_accepted() {
        let func: ItemFn = syn::parse_quote! { fn f(name: String, ids: Vec<u64>) -> u32 { 0 } };
        assert!(analyze(&func, "step").is_ok());
    }
}
