//! Number words by language (Whisper's language codes), for a turn that ends on a number read
//! out (`judge_heard`): Whisper writes most numbers in digits, some in words ("The code is
//! one two", "Die Nummer ist dreiundzwanzig", "Am einundzwanzigsten").
//!
//! English, French, Spanish and Portuguese write a number as separate words ("twenty-one",
//! "dix-sept", "treinta y uno", "vinte e um"), their few one-word compounds ("veintiuno",
//! "doscientos", "dezassete") listed whole. German, Dutch and Italian join a number into
//! one word ("hundertdreiundzwanzig", "honderddrieëntwintig", "centoventitré"), and French,
//! German, Dutch and Italian make ordinals with an ending ("vingtième", "zwanzigste",
//! "twintigste", "ventesimo"). So a word is a number word when it is built from its
//! language's parts: number words and stems, joined directly or by a joiner, with at most
//! one ordinal ending.
//!
//! `pipeline/tests/fixtures/number_words.tsv` holds numbers spelled by num2words (cardinals
//! to three thousand and beyond, ordinals), which the tests read back.

/// How one language builds its number words.
pub(super) struct NumberParts {
    /// Words that are numbers on their own, and parts of compounds.
    words: &'static str,
    /// Stems that are numbers only with another part or an ending after them: German "sieb"
    /// (siebzehn, siebte), Italian "vent" (ventuno, ventesimo), French "quatr" (quatrième).
    /// German "ein" (einundzwanzig) is one, so that the article "eine" is not a number.
    stems: &'static str,
    /// What joins two parts inside a word: German "und" (dreiundzwanzig), Dutch "en" and "ën"
    /// (eenentwintig, drieëntwintig).
    joiners: &'static str,
    /// Ordinal endings, which end a word after a part: "ste" (zwanzigste), "ième", "esimo".
    endings: &'static str,
    /// Whether parts join into one word (German, Dutch, Italian); elsewhere a word is one
    /// part, with its ending ("vingtième"), so that English "ooh" is not "o" "oh".
    compounds: bool,
}

/// Where a reading of the word has got to at a position (bit flags).
const WHOLE: u8 = 1; // after a part, ending a number
const STEM: u8 = 2; // after a stem, which needs more
const JOINED: u8 = 4; // after a joiner, which needs a part

impl NumberParts {
    /// Whether `word` (lowercase, without punctuation) is a number word: whether the parts
    /// build it whole. It is read left to right, every way at once (a byte position's flags
    /// say which readings reach it), so the work is linear in the word's length.
    pub(super) fn builds(&self, word: &str) -> bool {
        if word.is_empty() {
            return false;
        }
        let mut reach = vec![0u8; word.len() + 1];
        for at in 0..word.len() {
            let here = reach[at];
            if at > 0 && here == 0 {
                continue;
            }
            let rest = &word[at..];
            if here & (WHOLE | STEM) != 0 {
                if self.endings.split_whitespace().any(|e| e == rest) {
                    return true;
                }
                for joiner in self.joiners.split_whitespace() {
                    if rest.starts_with(joiner) && rest.len() > joiner.len() {
                        reach[at + joiner.len()] |= JOINED;
                    }
                }
            }
            // Parts after the first make a compound.
            if at > 0 && !self.compounds {
                continue;
            }
            for word_part in self.words.split_whitespace() {
                if rest.starts_with(word_part) {
                    reach[at + word_part.len()] |= WHOLE;
                }
            }
            for stem in self.stems.split_whitespace() {
                if rest.starts_with(stem) {
                    reach[at + stem.len()] |= STEM;
                }
            }
        }
        reach[word.len()] & WHOLE != 0
    }
}

pub(super) const ENGLISH: NumberParts = NumberParts {
    words: "zero oh o one two three four five six seven eight nine ten eleven twelve thirteen \
            fourteen fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty \
            sixty seventy eighty ninety hundred thousand million billion \
            first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth \
            thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth \
            twentieth thirtieth fortieth fiftieth sixtieth seventieth eightieth ninetieth \
            hundredth thousandth millionth",
    stems: "",
    joiners: "",
    endings: "",
    compounds: false,
};

pub(super) const FRENCH: NumberParts = NumberParts {
    words: "zéro un une deux trois quatre cinq six sept huit neuf dix onze douze treize \
            quatorze quinze seize vingt vingts trente quarante cinquante soixante septante \
            huitante octante nonante cent cents mille million millions milliard milliards \
            premier première premiers premières second seconde",
    stems: "quatr cinqu neuv onz douz treiz quatorz quinz seiz trent quarant cinquant soixant \
            septant huitant octant nonant mill millionn",
    joiners: "",
    endings: "ième ièmes",
    compounds: false,
};

pub(super) const SPANISH: NumberParts = NumberParts {
    words: "cero un uno una dos tres cuatro cinco seis siete ocho nueve diez once doce trece \
            catorce quince dieciséis diecisiete dieciocho diecinueve veinte veintiuno \
            veintiuna veintiún veintidós veintitrés veinticuatro veinticinco veintiséis \
            veintisiete veintiocho veintinueve treinta cuarenta cincuenta sesenta setenta \
            ochenta noventa cien ciento doscientos trescientos cuatrocientos quinientos \
            seiscientos setecientos ochocientos novecientos doscientas trescientas \
            cuatrocientas quinientas seiscientas setecientas ochocientas novecientas mil \
            millón millones \
            primero primera primer segundo segunda tercero tercera tercer cuarto cuarta quinto \
            quinta sexto sexta séptimo séptima octavo octava noveno novena décimo décima \
            undécimo duodécimo vigésimo vigésima trigésimo cuadragésimo quincuagésimo \
            sexagésimo septuagésimo octogésimo nonagésimo centésimo milésimo quadragésimo \
            decimoprimero décimoprimero decimosegundo décimosegundo decimotercero \
            decimocuarto decimoquinto decimosexto decimoséptimo decimoctavo decimonoveno",
    stems: "",
    joiners: "",
    endings: "",
    compounds: false,
};

/// "ein" is a stem (einundzwanzig, einhundert): alone, or with an ending ("eine", "einen"),
/// it is the article. The first and eighth take "-e" ("erste", "achte"), listed whole.
pub(super) const GERMAN: NumberParts = NumberParts {
    words: "null eins zwei zwo drei vier fünf sechs sieben acht neun zehn elf zwölf zwanzig \
            dreißig dreissig vierzig fünfzig sechzig siebzig achtzig neunzig hundert tausend \
            million millionen milliarde milliarden \
            erste ersten erster erstes erstem achte achten achter achtes achtem",
    stems: "ein sech sieb drit",
    joiners: "und",
    endings: "te ten ter tes tem ste sten ster stes stem",
    compounds: true,
};

/// Italian drops a vowel where parts meet (ventuno, trentotto) and before "-esimo"
/// (ventesimo, ventitreesimo, ottantottesimo): the stems are the shortened forms.
pub(super) const ITALIAN: NumberParts = NumberParts {
    words: "zero uno una due tre tré quattro cinque sei sette otto nove dieci undici dodici \
            tredici quattordici quindici sedici diciassette diciotto diciannove venti trenta \
            quaranta cinquanta sessanta settanta ottanta novanta cento mille mila milione \
            milioni miliardo miliardi \
            primo prima primi prime secondo seconda terzo terza quarto quarta quinto quinta \
            sesto sesta settimo settima ottavo ottava nono nona decimo decima",
    stems: "vent trent quarant cinquant sessant settant ottant novant cent mill milion undic \
            dodic tredic quattordic quindic sedic diciassett diciott diciannov quattr cinqu \
            sett nov diec du ott un",
    joiners: "",
    endings: "esimo esima esimi esime",
    compounds: true,
};

pub(super) const PORTUGUESE: NumberParts = NumberParts {
    words: "zero um uma dois duas três quatro cinco seis sete oito nove dez onze doze treze \
            catorze quatorze quinze dezasseis dezesseis dezassete dezessete dezoito dezanove \
            dezenove vinte trinta quarenta cinquenta sessenta setenta oitenta noventa cem \
            cento duzentos duzentas trezentos trezentas quatrocentos quatrocentas quinhentos \
            quinhentas seiscentos seiscentas setecentos setecentas oitocentos oitocentas \
            novecentos novecentas mil milhão milhões \
            primeiro primeira segundo segunda terceiro terceira quarto quarta quinto quinta \
            sexto sexta sétimo sétima oitavo oitava nono nona décimo décima vigésimo \
            vigésima trigésimo quadragésimo quinquagésimo sexagésimo septuagésimo \
            setuagésimo octogésimo nonagésimo centésimo milésimo",
    stems: "",
    joiners: "",
    endings: "",
    compounds: false,
};

/// The ordinal endings follow the number ("tweede", "achtste", "twintigste"); the first and
/// third are listed whole ("eerste", "derde").
pub(super) const DUTCH: NumberParts = NumberParts {
    words: "nul een één twee drie vier vijf zes zeven acht negen tien elf twaalf dertien \
            veertien twintig dertig veertig vijftig zestig zeventig tachtig negentig honderd \
            duizend miljoen miljard eerste derde",
    stems: "",
    joiners: "en ën",
    endings: "de ste e",
    compounds: true,
};

#[cfg(test)]
mod tests {
    use super::super::words::open_words;
    use proptest::prelude::*;

    fn is_number_word(word: &str, language: &str) -> bool {
        open_words(language).is_some_and(|words| words.numbers.builds(word))
    }

    const SPELLED: &str = include_str!("../../../tests/fixtures/number_words.tsv");

    /// Words num2words writes inside a spelled number that are not numbers: the joining
    /// words of the languages that write numbers apart, and the articles German "eine" and
    /// Italian "un" ("eine Million", "un milione").
    const NOT_NUMBERS: &[&str] = &["and", "et", "y", "e", "eine", "un"];

    #[test]
    fn every_word_of_a_spelled_number_is_a_number_word() {
        let mut checked = 0;
        for line in SPELLED.lines().filter(|l| !l.starts_with('#')) {
            let [language, number, spelled] = line.split('\t').collect::<Vec<_>>()[..] else {
                panic!("fixture line {line:?}");
            };
            let language = language.split('_').next().unwrap_or(language);
            for word in spelled.split([' ', '-', ',']).filter(|w| !w.is_empty()) {
                if NOT_NUMBERS.contains(&word) {
                    continue;
                }
                assert!(
                    is_number_word(word, language),
                    "{language} {number}: {word:?} of {spelled:?}"
                );
                checked += 1;
            }
        }
        assert!(checked > 3_000, "{checked} words checked");
    }

    #[test]
    fn everyday_words_are_not_numbers() {
        for (language, words) in [
            (
                "en",
                "often tone tent none someone only once nothing attend seconds ooh oo",
            ),
            (
                "fr",
                "centre trentaine septembre neuve cinéma quinzaine dixit",
            ),
            ("es", "unos ciencia docena sed sesión milla"),
            (
                "de",
                "ein eine einen einer einem eines sieb zweifel achtung einmal zehntel dreier",
            ),
            ("it", "vent un treno centro unico novembre cinquecentesco"),
            ("pt", "umas dezena centena setembro"),
            ("nl", "en vieren achter tienen zesen honderden"),
        ] {
            for word in words.split_whitespace() {
                assert!(
                    !is_number_word(word, language),
                    "{language}: {word:?} read as a number"
                );
            }
        }
    }

    #[test]
    fn compounds_and_ordinals_are_built_from_parts() {
        for (language, word) in [
            ("de", "dreiundzwanzig"),
            ("de", "siebzehn"),
            ("de", "einundzwanzigsten"),
            ("de", "zweitausenddreihundertvierundfünfzig"),
            ("nl", "drieëntwintig"),
            ("nl", "achtste"),
            ("it", "trentotto"),
            ("it", "ventitreesimo"),
            ("fr", "vingtième"),
        ] {
            assert!(is_number_word(word, language), "{language}: {word}");
        }
        // A stem needs more; a joiner needs a part on both sides; one ending, at the end.
        for (language, word) in [
            ("de", "sieb"),
            ("de", "dreisieb"),
            ("de", "undzwanzig"),
            ("de", "dreiund"),
            ("de", "zwanzigstete"),
            ("nl", "tweeën"),
            ("ja", "one"),
            ("en", ""),
        ] {
            assert!(!is_number_word(word, language), "{language}: {word:?}");
        }
    }

    proptest! {
        /// Any word is read without panicking, multi-byte letters included.
        #[test]
        fn any_word_is_read(
            word in "\\PC{0,40}",
            language in prop::sample::select(vec!["en", "fr", "es", "de", "it", "pt", "nl"]),
        ) {
            let _ = is_number_word(&word, language);
        }

        /// A German number of parts read from the lists is a number word, joined as it is
        /// spoken ("drei" "und" "zwanzig", "hundert" "elf").
        #[test]
        fn german_compounds_of_listed_parts_are_numbers(
            unit in prop::sample::select(vec!["ein", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun"]),
            ten in prop::sample::select(vec!["zwanzig", "dreißig", "vierzig", "fünfzig", "sechzig", "siebzig", "achtzig", "neunzig"]),
            hundreds in prop::option::of(prop::sample::select(vec!["hundert", "zweihundert", "neunhundert"])),
            ordinal in any::<bool>(),
        ) {
            let word = format!(
                "{}{unit}und{ten}{}",
                hundreds.unwrap_or(""),
                if ordinal { "sten" } else { "" }
            );
            prop_assert!(is_number_word(&word, "de"), "{}", word);
        }
    }
}
