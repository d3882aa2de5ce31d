//! `#[service]`: a plain trait of async methods becomes a Jadeite service.
//!
//! ```text
//! #[jadeite::service(roles = ["checkout"])]
//! pub trait Payment {
//!     async fn charge(&self, cx: &CallContext, order: u64, cents: u64) -> Result<Receipt, Refused>;
//!     #[roles("admin")]
//!     async fn refund(&self, order: u64) -> bool;
//!     #[unrestricted]
//!     async fn currencies(&self) -> Vec<String>;
//! }
//! ```
//!
//! generates the trait (each method returning a `Send` future, so any
//! implementor can be served from a multi-threaded runtime), `PaymentClient`
//! (methods with the same arguments minus the context, returning
//! `jadeite::service::Call<T>`, a future of `Result<T, CallError>`) and
//! `PaymentServer` (the dispatch, provided with
//! `platform.spawn(component).provide::<PaymentServer>()`).
//!
//! Access rules: `roles = [..]` on the trait or `#[roles(..)]` on a method
//! admit callers holding any one of the roles; `unrestricted` admits anyone;
//! a method's rule replaces the trait's; without a rule the caller must be
//! trusted (local, or with at least one verified role). A method reads its
//! caller by taking `&CallContext` as its first argument.

#![forbid(unsafe_code)]

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote, quote_spanned};
use syn::parse::Parser;
use syn::spanned::Spanned;
use syn::{
    Attribute, Error, Expr, ExprArray, FnArg, Ident, ItemTrait, Lit, LitStr, Pat, ReturnType,
    TraitItem, TraitItemFn, Type,
};

#[proc_macro_attribute]
pub fn service(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut options = ServiceOptions::default();
    let parser = syn::meta::parser(|meta| options.parse(meta));
    if let Err(error) = parser.parse(attr) {
        return error.to_compile_error().into();
    }
    let item_trait = match syn::parse::<ItemTrait>(item) {
        Ok(item) => item,
        Err(error) => {
            return Error::new(error.span(), "#[service] goes on a trait of async methods")
                .to_compile_error()
                .into();
        }
    };
    expand(options, item_trait)
        .unwrap_or_else(Error::into_compile_error)
        .into()
}

/// An access rule as written in the source.
#[derive(Clone)]
enum Rule {
    AnyRole(Vec<LitStr>),
    Unrestricted,
}

#[derive(Default)]
struct ServiceOptions {
    name: Option<LitStr>,
    rule: Option<(Rule, Span)>,
}

impl ServiceOptions {
    fn parse(&mut self, meta: syn::meta::ParseNestedMeta<'_>) -> syn::Result<()> {
        if meta.path.is_ident("name") {
            let name: LitStr = meta.value()?.parse()?;
            if name.value().is_empty() || name.value().len() > 256 {
                return Err(Error::new(name.span(), "a service name is 1 to 256 bytes"));
            }
            self.name = Some(name);
        } else if meta.path.is_ident("roles") {
            let array: ExprArray = meta.value()?.parse()?;
            let roles = role_literals(array.elems.iter(), array.span())?;
            self.set_rule(Rule::AnyRole(roles), meta.path.span())?;
        } else if meta.path.is_ident("unrestricted") {
            self.set_rule(Rule::Unrestricted, meta.path.span())?;
        } else {
            return Err(meta.error(
                "unknown #[service] option; expected `name = \"...\"`, `roles = [\"...\"]` or `unrestricted`",
            ));
        }
        Ok(())
    }

    fn set_rule(&mut self, rule: Rule, span: Span) -> syn::Result<()> {
        if self.rule.is_some() {
            return Err(Error::new(
                span,
                "a service has one trait-level rule: `roles = [..]` or `unrestricted`, not both",
            ));
        }
        self.rule = Some((rule, span));
        Ok(())
    }
}

/// Role names as string literals, checked as `RoleName` would check them.
fn role_literals<'a>(
    exprs: impl Iterator<Item = &'a Expr>,
    whole: Span,
) -> syn::Result<Vec<LitStr>> {
    let mut roles = Vec::new();
    for expr in exprs {
        let Expr::Lit(syn::ExprLit {
            lit: Lit::Str(role),
            ..
        }) = expr
        else {
            return Err(Error::new(expr.span(), "a role is a string literal"));
        };
        let name = role.value();
        let valid = (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !valid {
            return Err(Error::new(
                role.span(),
                "a role name is 1 to 64 characters of A-Z a-z 0-9 . _ -",
            ));
        }
        roles.push(role.clone());
    }
    if roles.is_empty() {
        return Err(Error::new(whole, "name at least one role"));
    }
    Ok(roles)
}

/// One method as the generated code needs it.
struct Method {
    ident: Ident,
    docs: Vec<Attribute>,
    /// Attributes kept on the trait method (everything but our rules).
    attrs: Vec<Attribute>,
    takes_context: bool,
    context_arg: Option<FnArg>,
    args: Vec<(Ident, Type)>,
    output: Type,
    rule: Option<Rule>,
}

fn expand(options: ServiceOptions, item: ItemTrait) -> syn::Result<TokenStream2> {
    check_trait_shape(&item)?;
    let mut methods = Vec::new();
    for trait_item in &item.items {
        match trait_item {
            TraitItem::Fn(method) => methods.push(parse_method(method)?),
            other => {
                return Err(Error::new(
                    other.span(),
                    "a service trait holds only async methods",
                ));
            }
        }
    }
    let trait_ident = &item.ident;
    let vis = &item.vis;
    let client = format_ident!("{}Client", trait_ident);
    let server = format_ident!("{}Server", trait_ident);
    let service_name = options
        .name
        .clone()
        .unwrap_or_else(|| LitStr::new(&trait_ident.to_string(), trait_ident.span()));
    let trait_rule = options.rule.map(|(rule, _)| rule);
    let trait_attrs = &item.attrs;

    let trait_methods = methods.iter().map(|m| {
        let Method {
            ident,
            attrs,
            context_arg,
            args,
            output,
            ..
        } = m;
        let context = context_arg.iter();
        let names = args.iter().map(|(name, _)| name);
        let types = args.iter().map(|(_, ty)| ty);
        quote! {
            #(#attrs)*
            fn #ident(&self, #(#context,)* #(#names: #types),*)
                -> impl ::core::future::Future<Output = #output> + ::core::marker::Send;
        }
    });

    let method_infos = methods.iter().map(|m| {
        let name = m.ident.to_string();
        let access = access_tokens(m.rule.as_ref().or(trait_rule.as_ref()));
        quote! { ::jadeite::service::MethodInfo { name: #name, access: #access } }
    });

    let client_methods = methods.iter().enumerate().map(|(index, m)| {
        let Method {
            ident,
            docs,
            args,
            output,
            ..
        } = m;
        let names: Vec<_> = args.iter().map(|(name, _)| name).collect();
        let types = args.iter().map(|(_, ty)| ty);
        quote! {
            #(#docs)*
            #vis fn #ident(&self, #(#names: #types),*) -> ::jadeite::service::Call<#output> {
                ::jadeite::service::ServiceHandle::call(&self.handle, #index, &(#(#names,)*))
            }
        }
    });

    let dispatch_arms = methods.iter().enumerate().map(|(index, m)| {
        let Method {
            ident,
            takes_context,
            args,
            ..
        } = m;
        let names: Vec<_> = args.iter().map(|(name, _)| name).collect();
        let types = args.iter().map(|(_, ty)| ty);
        let context = takes_context.then(|| quote!(&_context,));
        quote! {
            #index => {
                let (#(#names,)*): (#(#types,)*) = ::jadeite::codec::decode(_arguments)?;
                let component = ::std::sync::Arc::clone(_component);
                ::core::result::Result::Ok(::std::boxed::Box::pin(async move {
                    let result = <__C as #trait_ident>::#ident(&component, #context #(#names),*).await;
                    ::jadeite::codec::encode(&result)
                }))
            }
        }
    });

    // Every argument and result type must travel: checked here, spanned at
    // the type in the method, so the error points there.
    let wire_checks = methods.iter().flat_map(|m| {
        m.args
            .iter()
            .map(|(_, ty)| ty)
            .chain(std::iter::once(&m.output))
            .map(|ty| quote_spanned!(ty.span()=> wire::<#ty>();))
    });

    let client_doc = format!(
        "Typed client of the [`{trait_ident}`] service: each method calls the service \
         wherever it runs and returns `Result<_, CallError>`. Get one from \
         `Platform::find::<{client}>(scope)`."
    );
    let server_doc = format!(
        "Server-side dispatch of [`{trait_ident}`]: \
         `platform.spawn(component).provide::<{server}>()` serves it from any \
         component implementing the trait."
    );

    Ok(quote! {
        const _: () = {
            fn wire<T: ::jadeite::service::Wire>() {}
            #[allow(dead_code)]
            fn check() {
                #(#wire_checks)*
            }
        };

        #(#trait_attrs)*
        #vis trait #trait_ident: ::core::marker::Send + ::core::marker::Sync + 'static {
            #(#trait_methods)*
        }

        #[doc = #client_doc]
        #[derive(Clone, Debug)]
        #vis struct #client {
            handle: ::jadeite::service::ServiceHandle,
        }

        impl ::jadeite::service::ServiceInterface for #client {
            const NAME: &'static str = #service_name;
            const METHODS: &'static [::jadeite::service::MethodInfo] = &[#(#method_infos),*];

            fn from_handle(handle: ::jadeite::service::ServiceHandle) -> Self {
                Self { handle }
            }

            fn handle(&self) -> &::jadeite::service::ServiceHandle {
                &self.handle
            }
        }

        impl #client {
            /// The service instance this client calls.
            #vis fn target(&self) -> &::jadeite::service::ServiceRef {
                self.handle.target()
            }

            /// This client with another deadline for each call.
            #vis fn with_timeout(&self, timeout: ::core::time::Duration) -> Self {
                Self { handle: self.handle.with_timeout(timeout) }
            }

            #(#client_methods)*
        }

        #[doc = #server_doc]
        #vis enum #server {}

        impl<__C: #trait_ident> ::jadeite::service::ServiceDispatch<__C> for #server {
            type Interface = #client;

            fn dispatch(
                _component: &::std::sync::Arc<__C>,
                method: usize,
                _context: ::jadeite::CallContext,
                _arguments: &[u8],
            ) -> ::core::result::Result<
                ::jadeite::service::BoxFuture<
                    ::core::result::Result<::std::vec::Vec<u8>, ::jadeite::codec::CodecError>,
                >,
                ::jadeite::codec::CodecError,
            > {
                match method {
                    #(#dispatch_arms)*
                    _ => ::core::result::Result::Err(::jadeite::codec::CodecError::Decode(
                        ::std::format!("no method #{method}"),
                    )),
                }
            }
        }
    })
}

fn access_tokens(rule: Option<&Rule>) -> TokenStream2 {
    match rule {
        None => quote!(::jadeite::service::Access::Trusted),
        Some(Rule::Unrestricted) => quote!(::jadeite::service::Access::Unrestricted),
        Some(Rule::AnyRole(roles)) => quote!(::jadeite::service::Access::AnyRole(&[#(#roles),*])),
    }
}

fn check_trait_shape(item: &ItemTrait) -> syn::Result<()> {
    if let Some(unsafety) = &item.unsafety {
        return Err(Error::new(
            unsafety.span(),
            "a service trait cannot be unsafe",
        ));
    }
    if let Some(auto) = &item.auto_token {
        return Err(Error::new(
            auto.span(),
            "a service trait cannot be an auto trait",
        ));
    }
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        return Err(Error::new(
            item.generics.span(),
            "a service trait cannot be generic: its name and methods are its wire identity",
        ));
    }
    if !item.supertraits.is_empty() {
        return Err(Error::new(
            item.supertraits.span(),
            "a service trait has no supertraits (it gets `Send + Sync + 'static`)",
        ));
    }
    Ok(())
}

fn parse_method(method: &TraitItemFn) -> syn::Result<Method> {
    let sig = &method.sig;
    let at_method = |message: &str| Error::new(sig.ident.span(), message);
    if sig.asyncness.is_none() {
        return Err(Error::new(
            sig.fn_token.span(),
            format!("service method `{}` must be an `async fn`", sig.ident),
        ));
    }
    if sig.constness.is_some() || sig.unsafety.is_some() || sig.abi.is_some() {
        return Err(at_method(
            "a service method cannot be const, unsafe or extern",
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(Error::new(
            sig.generics.span(),
            format!(
                "service method `{}` cannot be generic: every call must decode to one type",
                sig.ident
            ),
        ));
    }
    if let Some(variadic) = &sig.variadic {
        return Err(Error::new(
            variadic.span(),
            "a service method cannot be variadic",
        ));
    }
    if let Some(body) = &method.default {
        return Err(Error::new(
            body.span(),
            format!(
                "service method `{}` cannot have a default body; implement it on the component",
                sig.ident
            ),
        ));
    }
    if matches!(sig.ident.to_string().as_str(), "target" | "with_timeout") {
        return Err(at_method(
            "`target` and `with_timeout` are methods of the generated client; rename this method",
        ));
    }

    let mut inputs = sig.inputs.iter();
    match inputs.next() {
        Some(FnArg::Receiver(receiver))
            if receiver.reference.is_some()
                && receiver.mutability.is_none()
                && receiver.colon_token.is_none() => {}
        Some(other @ FnArg::Receiver(_)) => {
            return Err(Error::new(
                other.span(),
                format!(
                    "service method `{}` takes `&self`: calls into one component interleave, so no call gets it mutably or by value",
                    sig.ident
                ),
            ));
        }
        _ => {
            return Err(at_method("a service method takes `&self` first"));
        }
    }

    let mut takes_context = false;
    let mut context_arg = None;
    let mut args = Vec::new();
    for (position, input) in inputs.enumerate() {
        let FnArg::Typed(typed) = input else {
            return Err(Error::new(input.span(), "only one receiver is allowed"));
        };
        if is_context(&typed.ty) {
            if position != 0 {
                return Err(Error::new(
                    typed.ty.span(),
                    "`&CallContext` must be the first argument after `&self`",
                ));
            }
            takes_context = true;
            context_arg = Some(input.clone());
            continue;
        }
        let Pat::Ident(pat) = &*typed.pat else {
            return Err(Error::new(
                typed.pat.span(),
                "service method arguments are plain names (no patterns)",
            ));
        };
        if pat.by_ref.is_some() || pat.subpat.is_some() {
            return Err(Error::new(
                typed.pat.span(),
                "service method arguments are plain names (no patterns)",
            ));
        }
        check_argument_type(&typed.ty)?;
        args.push((pat.ident.clone(), (*typed.ty).clone()));
    }

    let output = match &sig.output {
        ReturnType::Default => syn::parse_quote!(()),
        ReturnType::Type(_, ty) => {
            if contains_impl_trait(ty) {
                return Err(Error::new(
                    ty.span(),
                    "a service method returns a concrete serde type, not `impl Trait`",
                ));
            }
            (**ty).clone()
        }
    };

    let mut rule = None;
    let mut attrs = Vec::new();
    let mut docs = Vec::new();
    for attr in &method.attrs {
        if attr.path().is_ident("roles") {
            let list = attr.parse_args_with(
                syn::punctuated::Punctuated::<Expr, syn::Token![,]>::parse_terminated,
            )?;
            let roles = role_literals(list.iter(), attr.span())?;
            set_method_rule(&mut rule, Rule::AnyRole(roles), attr)?;
        } else if attr.path().is_ident("unrestricted") {
            attr.meta.require_path_only()?;
            set_method_rule(&mut rule, Rule::Unrestricted, attr)?;
        } else {
            if attr.path().is_ident("doc") {
                docs.push(attr.clone());
            }
            attrs.push(attr.clone());
        }
    }

    Ok(Method {
        ident: sig.ident.clone(),
        docs,
        attrs,
        takes_context,
        context_arg,
        args,
        output,
        rule,
    })
}

fn set_method_rule(slot: &mut Option<Rule>, rule: Rule, attr: &Attribute) -> syn::Result<()> {
    if slot.is_some() {
        return Err(Error::new(
            attr.span(),
            "a method has one rule: `#[roles(..)]` or `#[unrestricted]`, not both",
        ));
    }
    *slot = Some(rule);
    Ok(())
}

/// `&CallContext`, `&jadeite::CallContext`, ...: a shared reference to a
/// path ending in `CallContext`.
fn is_context(ty: &Type) -> bool {
    let Type::Reference(reference) = ty else {
        return false;
    };
    reference.mutability.is_none()
        && matches!(&*reference.elem, Type::Path(path)
            if path.qself.is_none()
                && path.path.segments.last().is_some_and(|s| s.ident == "CallContext"))
}

fn check_argument_type(ty: &Type) -> syn::Result<()> {
    if let Type::Reference(reference) = ty {
        return Err(Error::new(
            reference.and_token.span(),
            "service method arguments are owned values (they are decoded from the wire); take `String` or `Vec<T>`, not a reference",
        ));
    }
    if contains_impl_trait(ty) {
        return Err(Error::new(
            ty.span(),
            "service method arguments are concrete serde types, not `impl Trait`",
        ));
    }
    Ok(())
}

fn contains_impl_trait(ty: &Type) -> bool {
    match ty {
        Type::ImplTrait(_) => true,
        Type::Reference(r) => contains_impl_trait(&r.elem),
        Type::Paren(p) => contains_impl_trait(&p.elem),
        Type::Group(g) => contains_impl_trait(&g.elem),
        Type::Slice(s) => contains_impl_trait(&s.elem),
        Type::Array(a) => contains_impl_trait(&a.elem),
        Type::Tuple(t) => t.elems.iter().any(contains_impl_trait),
        Type::Path(p) => p.path.segments.iter().any(|segment| {
            match &segment.arguments {
            syn::PathArguments::AngleBracketed(args) => args.args.iter().any(|arg| {
                matches!(arg, syn::GenericArgument::Type(inner) if contains_impl_trait(inner))
            }),
            _ => false,
        }
        }),
        _ => false,
    }
}
