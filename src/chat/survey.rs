//! Questionnaires by quick reply whose answers become customer attributes.

/// A survey: questions asked one after the other, each answer stored as an attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Survey {
    pub(crate) id: String,
    pub(crate) questions: Vec<Question>,
}

/// One question: its text, the attribute its answer sets and the choices (2 to 13).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub(crate) attribute: String,
    pub(crate) text: String,
    pub(crate) choices: Vec<(String, String)>,
}

impl Survey {
    /// A survey called `id` (it starts on the keyword rule or postback that names it).
    #[must_use]
    pub fn new(id: impl Into<String>) -> Self {
        Self { id: id.into(), questions: Vec::new() }
    }

    /// Adds a question whose answer sets `attribute` (a text value) — `attr skin_type = "dry"`
    /// in a segment. `choices` are `(label, value)`: the label on the button (at most 20
    /// characters), the value stored.
    #[must_use]
    pub fn question<L: Into<String>, V: Into<String>>(
        mut self,
        attribute: impl Into<String>,
        text: impl Into<String>,
        choices: impl IntoIterator<Item = (L, V)>,
    ) -> Self {
        let choices = choices.into_iter().map(|(l, v)| (l.into(), v.into())).collect();
        self.questions.push(Question { attribute: attribute.into(), text: text.into(), choices });
        self
    }

    /// The survey's ID.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        if self.questions.is_empty() {
            return Err(format!("survey `{}` has no question", self.id));
        }
        for q in &self.questions {
            if !(2..=13).contains(&q.choices.len()) {
                return Err(format!(
                    "survey `{}`: `{}` needs 2 to 13 choices",
                    self.id, q.attribute
                ));
            }
            if let Some((label, _)) = q.choices.iter().find(|(l, _)| l.chars().count() > 20) {
                return Err(format!(
                    "survey `{}`: the label `{label}` is over 20 characters",
                    self.id
                ));
            }
        }
        Ok(())
    }
}

/// A skin-type survey (UC-09), ready to use.
#[must_use]
pub fn skin_type_survey() -> Survey {
    Survey::new("skin").question(
        "skin_type",
        "お肌のタイプを教えてください。",
        [
            ("乾燥肌", "dry"),
            ("脂性肌", "oily"),
            ("混合肌", "combination"),
            ("普通肌", "normal"),
            ("敏感肌", "sensitive"),
        ],
    )
}
