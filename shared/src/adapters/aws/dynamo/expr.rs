//! Builds `UpdateItem` expressions with placeholders for every name and value, so no
//! attribute ever collides with DynamoDB's long list of reserved words.

use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

/// An update: `SET` for present values, `REMOVE` for absent ones, plus a condition.
#[derive(Debug, Default)]
pub(super) struct Update {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
    sets: Vec<String>,
    removes: Vec<String>,
    condition: Option<String>,
}

impl Update {
    /// A placeholder (`#nX`) for attribute `name`.
    pub(super) fn name(&mut self, name: &str) -> String {
        let placeholder = format!("#n{}", self.names.len());
        self.names.insert(placeholder.clone(), name.to_owned());
        placeholder
    }

    /// A placeholder (`:vX`) for `value`.
    pub(super) fn value(&mut self, value: AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), value);
        placeholder
    }

    /// Sets `name` to `value`, or removes it when `value` is `None`.
    pub(super) fn set_or_remove(&mut self, name: &str, value: Option<AttributeValue>) {
        let name = self.name(name);
        match value {
            Some(value) => {
                let value = self.value(value);
                self.sets.push(format!("{name} = {value}"));
            }
            None => self.removes.push(name),
        }
    }

    /// Only apply the update if `condition` (written with placeholders) holds.
    pub(super) fn condition(&mut self, condition: String) {
        self.condition = Some(condition);
    }

    /// Puts the expressions on an `UpdateItem` request.
    pub(super) fn apply(self, request: UpdateItemFluentBuilder) -> UpdateItemFluentBuilder {
        let mut expression = Vec::new();
        if !self.sets.is_empty() {
            expression.push(format!("SET {}", self.sets.join(", ")));
        }
        if !self.removes.is_empty() {
            expression.push(format!("REMOVE {}", self.removes.join(", ")));
        }
        request
            .update_expression(expression.join(" "))
            .set_condition_expression(self.condition)
            .set_expression_attribute_names(Some(self.names))
            .set_expression_attribute_values((!self.values.is_empty()).then_some(self.values))
    }
}
