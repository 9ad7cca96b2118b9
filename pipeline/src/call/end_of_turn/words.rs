//! The words a spoken sentence does not end on, by language (Whisper's language codes).
//!
//! Each list holds only words that, last in a turn, leave it open in nearly every use:
//! articles and possessives, conjunctions, fillers, and prepositions waiting for their object.
//! Words that also end sentences often are left out: English "so", "that", "on", "in";
//! German and Dutch prepositions that double as a separable verb's particle ("Ich komme
//! mit.", "Hij belt op."); demonstratives ("das", "dat", "este"); and question words
//! ("perché?", "por qué?").

use super::numbers::{self, NumberParts};

/// One language's words.
pub(super) struct OpenWords {
    /// Words that leave any sentence open.
    pub dangling: &'static [&'static str],
    /// Prepositions that want an object ("a table for").
    pub prepositions: &'static [&'static str],
    /// Words that move a preposition's object to the front of the sentence, so that the
    /// preposition may end it ("What is it for?", "Daar weet ik niets van."): English and
    /// Dutch strand prepositions, the other languages listed here do not.
    pub fronting: &'static [&'static str],
    /// Words after which "to" stands for what was just said ("I'd love to."): English only.
    pub elliptical_to: &'static [&'static str],
    /// How the language's number words are built, for a turn that ends on a number.
    pub numbers: &'static NumberParts,
}

/// The words of `language`, if it has a list.
pub(super) fn open_words(language: &str) -> Option<&'static OpenWords> {
    Some(match language {
        "en" => &ENGLISH,
        "fr" => &FRENCH,
        "es" => &SPANISH,
        "de" => &GERMAN,
        "it" => &ITALIAN,
        "pt" => &PORTUGUESE,
        "nl" => &DUTCH,
        _ => return None,
    })
}

const ENGLISH: OpenWords = OpenWords {
    dangling: &[
        "a", "an", "the", "my", "your", "our", "their", "its", "every", "and", "or", "but", "nor",
        "because", "if", "than", "although", "unless", "whereas", "whether", "i", "i'm", "i'd",
        "i'll", "i've", "we're", "you're", "they're", "it's", "um", "uh", "er", "erm", "uhm",
        "very", "really",
    ],
    prepositions: &[
        "of", "to", "for", "with", "at", "from", "about", "into", "onto", "toward", "towards",
    ],
    fronting: &[
        "what", "which", "who", "whom", "whose", "where", "when", "how",
    ],
    elliptical_to: &[
        "love", "like", "want", "wanted", "need", "have", "has", "had", "going", "got", "able",
        "try", "trying", "supposed", "used",
    ],
    numbers: &numbers::ENGLISH,
};

/// "le", "la" and "les" end a sentence only after an imperative, which Whisper hyphenates
/// into one word ("Prends-le."). Stressed pronouns ("C'est elle.", "Et vous ?"), "si"
/// ("Mais si !") and "quand" ("Jusqu'à quand ?") end sentences, so they are not listed.
const FRENCH: OpenWords = OpenWords {
    dangling: &[
        "le", "la", "les", "l'", "un", "une", "des", "du", "au", "aux", "mon", "ma", "mes", "ton",
        "ta", "tes", "son", "sa", "ses", "notre", "votre", "nos", "vos", "leurs", "et", "ou",
        "mais", "parce", "que", "qu'", "car", "lorsque", "comme", "je", "j'", "il", "ils", "euh",
        "heu", "très",
    ],
    prepositions: &[
        "de", "d'", "à", "pour", "avec", "dans", "chez", "vers", "sans", "par", "sur", "jusqu'à",
    ],
    fronting: &[],
    elliptical_to: &[],
    numbers: &numbers::FRENCH,
};

/// "él" (he), "mí" (me), "tú" (you), "sí" (yes) and the question words ("¿cómo?",
/// "¿cuándo?") carry accents that the words listed do not. "entre" and "sobre" are also a
/// verb and a noun ("¡Entre!", "el sobre").
const SPANISH: OpenWords = OpenWords {
    dangling: &[
        "el", "la", "los", "las", "un", "una", "unos", "unas", "mi", "mis", "tu", "tus", "su",
        "sus", "nuestro", "nuestra", "nuestros", "nuestras", "al", "del", "y", "e", "o", "u",
        "pero", "porque", "que", "si", "aunque", "ni", "cuando", "eh", "em", "mmm", "muy",
    ],
    prepositions: &[
        "a", "de", "en", "con", "para", "por", "sin", "hasta", "desde", "hacia",
    ],
    fronting: &[],
    elliptical_to: &[],
    numbers: &numbers::SPANISH,
};

/// German ends sentences on pronouns that look like articles ("Ich nehme die.", "Ich nehme
/// eine.", "Das bin ich."), on modal particles ("Was ist denn?", "Danke sehr.") and on a
/// separable verb's particle, most of them prepositions too ("Ich komme mit.", "Er sieht gut
/// aus."): only words free of all three are listed.
const GERMAN: OpenWords = OpenWords {
    dangling: &[
        "des", "meinem", "deinem", "und", "oder", "aber", "weil", "dass", "ob", "sondern",
        "obwohl", "äh", "ähm", "öhm",
    ],
    prepositions: &[
        "für", "von", "zum", "zur", "vom", "beim", "im", "ins", "ohne", "wegen", "trotz",
        "zwischen",
    ],
    fronting: &[],
    elliptical_to: &[],
    numbers: &numbers::GERMAN,
};

/// Possessives end sentences in Italian and Portuguese ("È mio.", "É meu."), as do
/// "molto" / "muito" ("Mi piace molto.") and "quando?" / "perché?": none is listed.
const ITALIAN: OpenWords = OpenWords {
    dangling: &[
        "il", "lo", "la", "i", "gli", "le", "un", "uno", "una", "un'", "l'", "e", "ed", "o", "ma",
        "se", "mentre", "sebbene", "ehm", "cioè",
    ],
    prepositions: &[
        "di", "a", "da", "in", "con", "per", "tra", "fra", "del", "della", "dei", "delle", "al",
        "alla", "ai", "alle", "nel", "nella", "sul", "sulla", "dal", "dalla",
    ],
    fronting: &[],
    elliptical_to: &[],
    numbers: &numbers::ITALIAN,
};

const PORTUGUESE: OpenWords = OpenWords {
    dangling: &[
        "o", "a", "os", "as", "um", "uma", "uns", "umas", "e", "ou", "mas", "porque", "que", "se",
        "embora", "ahn",
    ],
    prepositions: &[
        "de", "em", "para", "com", "por", "sem", "até", "do", "da", "dos", "das", "no", "na",
        "nos", "nas", "ao", "à", "pela",
    ],
    fronting: &[],
    elliptical_to: &[],
    numbers: &numbers::PORTUGUESE,
};

/// Dutch ends sentences on "het" and "dat" ("Ik weet het."), on "ik" ("Dat ben ik."), on
/// "een" written for "één" (one) and on particles that are prepositions too ("Hij belt
/// op.", "Het komt voor."): none is listed. A preposition may end a sentence whose object
/// "waar", "daar", "er" or "hier" stands for ("Waar kom je van?").
const DUTCH: OpenWords = OpenWords {
    dangling: &[
        "de", "mijn", "jouw", "onze", "en", "of", "maar", "omdat", "want", "eh", "uh", "euh", "ehm",
    ],
    prepositions: &["met", "naar", "van", "zonder", "tussen"],
    fronting: &["waar", "daar", "er", "hier"],
    elliptical_to: &[],
    numbers: &numbers::DUTCH,
};
