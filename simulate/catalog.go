package simulate

import (
	"slices"
	"strings"
)

// CategoryWords is the vocabulary and the price level of one marketplace
// category. Stream titles are built as "[modifier] item [format]", tags are
// drawn from Tags and chat messages mention items and modifiers, so every word
// the generator writes for a category comes from here (plus the
// category-independent chat phrases and language prefixes, see Vocabulary).
type CategoryWords struct {
	// Name is the human-readable name ("Trading Cards").
	Name string
	// Popularity is the relative share of sellers and of user tastes.
	Popularity float64
	// Items are the things sold ("pokemon booster box", "charizard").
	Items []string
	// Modifiers qualify an item ("psa graded", "sealed", "vintage").
	Modifiers []string
	// Formats are kinds of shows ("break", "pack opening", "auction").
	Formats []string
	// Tags are the stream tags (lowercase, hyphenated).
	Tags []string
	// StartPrice is the typical auction starting price in USD.
	StartPrice float64
	// Value is the typical hammer price of an auction in USD.
	Value float64
}

// Tokens returns the sorted distinct lowercase tokens of the category's words
// (items, modifiers, formats and tags, split on anything but letters and
// digits).
func (w CategoryWords) Tokens() []string {
	set := map[string]struct{}{}
	for _, list := range [][]string{w.Items, w.Modifiers, w.Formats, w.Tags} {
		addTokens(set, list...)
	}
	return sortedKeys(set)
}

// The catalog, in a fixed order (the default Config.Categories).
var catalog = []struct {
	id    string
	words CategoryWords
}{
	{"trading-cards", CategoryWords{
		Name: "Trading Cards", Popularity: 20, StartPrice: 1, Value: 25,
		Items: []string{"pokemon booster box", "charizard", "pikachu", "elite trainer box",
			"japanese booster box", "one piece booster box", "yugioh tin", "magic the gathering collector booster",
			"lorcana booster pack", "pokemon 151", "evolving skies", "moonbreon", "pokemon cards", "booster packs"},
		Modifiers: []string{"psa graded", "psa 10", "sealed", "1st edition", "holo", "japanese", "vintage", "cgc graded", "bgs 9.5"},
		Formats:   []string{"break", "pack opening", "live rips", "mystery packs", "auction", "giveaways", "low starts"},
		Tags: []string{"pokemon", "tcg", "booster-box", "graded", "psa", "charizard", "one-piece", "yugioh", "mtg",
			"sealed", "pack-opening", "lorcana"},
	}},
	{"sports-cards", CategoryWords{
		Name: "Sports Cards", Popularity: 16, StartPrice: 1, Value: 30,
		Items: []string{"topps chrome", "panini prizm", "rookie card", "basketball hobby box", "football blaster box",
			"baseball cards", "wemby rookie", "patch auto", "bowman chrome", "select hobby box", "soccer cards", "hockey cards"},
		Modifiers: []string{"psa 10", "graded", "numbered", "autographed", "sealed", "vintage", "refractor", "silver prizm"},
		Formats:   []string{"break", "case break", "pick your team", "live rips", "auction", "low starts"},
		Tags: []string{"nba", "nfl", "mlb", "nhl", "rookies", "autos", "prizm", "topps", "panini", "graded",
			"case-break", "bowman"},
	}},
	{"sneakers", CategoryWords{
		Name: "Sneakers", Popularity: 9, StartPrice: 20, Value: 160,
		Items: []string{"jordan sneakers", "jordan 1", "jordan 4", "nike dunk low", "yeezy 350", "new balance 550",
			"air max 90", "travis scott jordan", "off white nike", "air force 1", "asics gel", "running shoes"},
		Modifiers: []string{"vintage", "deadstock", "brand new", "used", "rare", "og", "limited"},
		Formats:   []string{"auction", "size run", "mystery box", "restock", "low starts", "sneaker night"},
		Tags: []string{"jordan", "nike", "dunks", "yeezy", "new-balance", "deadstock", "streetwear", "sneakers",
			"size-10", "air-max"},
	}},
	{"watches", CategoryWords{
		Name: "Watches", Popularity: 5, StartPrice: 50, Value: 450,
		Items: []string{"rolex submariner", "omega speedmaster", "seiko diver", "casio g shock", "tag heuer",
			"vintage chronograph", "cartier tank", "tudor black bay", "automatic watch", "pocket watch", "dive watch"},
		Modifiers: []string{"pre owned", "vintage", "swiss", "automatic", "box and papers", "rare", "serviced"},
		Formats:   []string{"auction", "watch night", "low starts", "collection sale"},
		Tags: []string{"rolex", "omega", "seiko", "luxury", "vintage-watches", "chronograph", "automatic",
			"g-shock", "watches", "swiss"},
	}},
	{"handbags", CategoryWords{
		Name: "Handbags", Popularity: 5, StartPrice: 40, Value: 350,
		Items: []string{"louis vuitton neverfull", "chanel flap bag", "gucci marmont", "coach tote", "prada nylon bag",
			"hermes scarf", "designer handbag", "crossbody bag", "dior saddle bag", "vintage purse", "wallet"},
		Modifiers: []string{"authentic", "pre loved", "designer", "vintage", "luxury", "like new"},
		Formats:   []string{"auction", "closet sale", "designer night", "low starts"},
		Tags: []string{"louis-vuitton", "chanel", "gucci", "coach", "luxury", "designer", "preloved", "purses",
			"handbags", "prada"},
	}},
	{"comics", CategoryWords{
		Name: "Comics", Popularity: 7, StartPrice: 3, Value: 30,
		Items: []string{"spider man", "batman", "x men", "key issues", "first appearance", "wolverine",
			"graphic novels", "manga", "variant covers", "golden age comics", "amazing spider man", "venom"},
		Modifiers: []string{"cgc graded", "cgc 9.8", "signed", "vintage", "raw", "newsstand", "bronze age"},
		Formats:   []string{"auction", "long box dig", "mystery bags", "low starts", "comic night"},
		Tags: []string{"marvel", "dc", "cgc", "key-issues", "manga", "spider-man", "x-men", "variants",
			"comics", "batman"},
	}},
	{"coins", CategoryWords{
		Name: "Coins", Popularity: 7, StartPrice: 5, Value: 60,
		Items: []string{"morgan silver dollar", "silver eagle", "gold coin", "peace dollar", "wheat pennies",
			"world coins", "silver bullion", "proof set", "walking liberty half", "ancient coins", "silver bars"},
		Modifiers: []string{"graded", "ngc graded", "pcgs graded", "uncirculated", "proof", "rare date", "key date"},
		Formats:   []string{"auction", "bullion night", "coin roll hunting", "low starts"},
		Tags: []string{"silver", "gold", "bullion", "morgan", "numismatics", "pcgs", "ngc", "us-coins",
			"coins", "silver-eagle"},
	}},
	{"jewelry", CategoryWords{
		Name: "Jewelry", Popularity: 5, StartPrice: 10, Value: 80,
		Items: []string{"gold chain", "diamond ring", "sterling silver necklace", "pearl earrings", "turquoise bracelet",
			"tennis bracelet", "moissanite ring", "vintage brooch", "gemstone pendant", "estate jewelry", "cuban link"},
		Modifiers: []string{"14k", "sterling", "vintage", "handmade", "estate", "solid gold"},
		Formats:   []string{"auction", "jewelry night", "mystery bags", "low starts"},
		Tags: []string{"gold", "silver", "diamonds", "rings", "necklaces", "estate-jewelry", "gemstones",
			"handmade", "jewelry", "bracelets"},
	}},
	{"funko", CategoryWords{
		Name: "Funko Pops", Popularity: 7, StartPrice: 1, Value: 20,
		Items: []string{"funko pop", "chase pop", "grail pops", "marvel pops", "anime pops", "convention exclusive",
			"funko soda", "mystery minis", "star wars pops", "disney pops", "pop vinyl"},
		Modifiers: []string{"vaulted", "exclusive", "signed", "glow in the dark", "flocked", "rare"},
		Formats:   []string{"auction", "mystery box", "blind bags", "low starts"},
		Tags: []string{"funko", "pops", "chase", "vaulted", "exclusives", "anime", "marvel", "disney",
			"funko-pop", "grails"},
	}},
	{"vintage-clothing", CategoryWords{
		Name: "Vintage Clothing", Popularity: 6, StartPrice: 5, Value: 35,
		Items: []string{"band tees", "vintage levis", "carhartt jacket", "nfl jersey", "harley davidson tee",
			"varsity jacket", "windbreaker", "denim jacket", "single stitch tee", "nascar jacket", "flannel shirts"},
		Modifiers: []string{"vintage", "90s", "80s", "single stitch", "thrifted", "rare", "made in usa"},
		Formats:   []string{"auction", "bundle sale", "thrift haul", "low starts"},
		Tags: []string{"vintage", "streetwear", "90s", "band-tees", "denim", "carhartt", "thrift", "jerseys",
			"vintage-clothing", "levis"},
	}},
	{"video-games", CategoryWords{
		Name: "Video Games", Popularity: 7, StartPrice: 5, Value: 45,
		Items: []string{"nintendo 64", "game boy", "pokemon red", "super nintendo", "playstation 2", "sega genesis",
			"zelda", "mario kart", "gamecube games", "retro consoles", "nintendo switch"},
		Modifiers: []string{"cib", "sealed", "graded", "retro", "tested", "wata graded", "complete"},
		Formats:   []string{"auction", "game night", "mystery lot", "low starts"},
		Tags: []string{"retro-games", "nintendo", "playstation", "sega", "pokemon", "zelda", "consoles", "cib",
			"video-games", "gameboy"},
	}},
	{"toys", CategoryWords{
		Name: "Toys", Popularity: 6, StartPrice: 2, Value: 25,
		Items: []string{"lego set", "hot wheels", "action figures", "transformers", "star wars figures", "barbie",
			"beanie babies", "lego minifigures", "die cast cars", "model trains", "he man figures"},
		Modifiers: []string{"vintage", "sealed", "mint in box", "rare", "retired", "loose"},
		Formats:   []string{"auction", "mystery box", "toy hunt", "low starts"},
		Tags: []string{"lego", "hot-wheels", "action-figures", "star-wars", "vintage-toys", "retired", "diecast",
			"collectibles", "toys", "barbie"},
	}},
}

// Category-independent words.
var (
	// chatPhrases are generic chat messages per language.
	chatPhrases = map[string][]string{
		"en": {"lets go", "gl everyone", "how much for shipping", "first time here", "W", "sheesh", "what size",
			"is it authentic", "who else is watching", "love this stream", "run it back", "bid war",
			"too rich for me", "nice pull", "can you show the back", "great deal", "hi from texas",
			"that was fast", "any more like that", "combined shipping?"},
		"es": {"vamos", "que bonito", "cuanto cuesta el envio", "hola a todos", "buena suerte", "me encanta",
			"otra vez", "que precio"},
		"de": {"los gehts", "wie viel kostet der versand", "hallo zusammen", "sehr schoen", "viel glueck",
			"super deal", "noch einmal"},
	}
	// chatTemplates mention an item ({i}) and/or a modifier ({m}) of the
	// stream's category.
	chatTemplates = []string{"is that {i} {m}?", "need that {i}", "{i} lets go", "how much for the {i}",
		"any {i} left?", "{m} {i} is fire", "big hit on the {i}!", "show the {i} again", "more {i} please",
		"is the {i} {m}?", "w {i}"}
	// titlePrefixes start some titles of non-English streams.
	titlePrefixes = map[string][]string{
		"es": {"subasta en vivo", "ofertas", "en vivo"},
		"de": {"live auktion", "angebote", "live"},
	}
	languages = []string{"en", "es", "de"}
	// languageShare is the share of sellers and users per language.
	languageShare = []float64{0.85, 0.10, 0.05}
)

// Catalog returns the built-in categories keyed by category id (the value of
// events.Livestream.Category). The result is a fresh copy.
func Catalog() map[string]CategoryWords {
	m := make(map[string]CategoryWords, len(catalog))
	for _, c := range catalog {
		w := c.words
		w.Items = slices.Clone(w.Items)
		w.Modifiers = slices.Clone(w.Modifiers)
		w.Formats = slices.Clone(w.Formats)
		w.Tags = slices.Clone(w.Tags)
		m[c.id] = w
	}
	return m
}

// Categories returns the ids of the built-in categories in their fixed order
// (the default of Config.Categories).
func Categories() []string {
	ids := make([]string, len(catalog))
	for i, c := range catalog {
		ids[i] = c.id
	}
	return ids
}

// Vocabulary returns every distinct lowercase token the generator can write
// in titles, tags and chat messages, sorted: the tokens of all categories, of
// the generic chat phrases and templates and of the language title prefixes.
func Vocabulary() []string {
	set := map[string]struct{}{}
	for _, c := range catalog {
		addTokens(set, c.words.Items...)
		addTokens(set, c.words.Modifiers...)
		addTokens(set, c.words.Formats...)
		addTokens(set, c.words.Tags...)
	}
	for _, l := range languages {
		addTokens(set, chatPhrases[l]...)
		addTokens(set, titlePrefixes[l]...)
	}
	for _, t := range chatTemplates {
		addTokens(set, strings.NewReplacer("{i}", " ", "{m}", " ").Replace(t))
	}
	return sortedKeys(set)
}

// Tokenize splits s into the lowercase tokens Vocabulary uses: maximal runs of
// ASCII letters and digits ("9.8" gives "9" and "8").
func Tokenize(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9')
	})
}

func addTokens(set map[string]struct{}, phrases ...string) {
	for _, p := range phrases {
		for _, t := range Tokenize(p) {
			set[t] = struct{}{}
		}
	}
}

func sortedKeys(set map[string]struct{}) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
