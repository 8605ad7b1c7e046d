package testmodel

import "strings"

// Special tokens, in id order (ids 0..4).
const (
	PadToken  = "[PAD]"
	UnkToken  = "[UNK]"
	ClsToken  = "[CLS]"
	SepToken  = "[SEP]"
	MaskToken = "[MASK]"
)

var specialTokens = []string{PadToken, UnkToken, ClsToken, SepToken, MaskToken}

// vocabWords: the words of a live-shopping marketplace (categories, brands,
// products, selling vocabulary) plus common English words, punctuation,
// digits and a few WordPiece continuations ("##s" turns "cards" into
// "card ##s" when only "card" is listed; digits let numbers tokenize).
// Everything is lowercase and accent-free: the tokenizer lowercases and
// strips accents before the lookup.
var vocabWords = strings.Fields(`
! " # $ % & ' ( ) * + , - . / : ; ? @
0 1 2 3 4 5 6 7 8 9 10 100
##0 ##1 ##2 ##3 ##4 ##5 ##6 ##7 ##8 ##9 ##s ##es ##ed ##ing ##er ##ly ##y

trading card cards pokemon pikachu charizard booster box pack sealed graded
psa bgs cgc gem mint rookie auto autograph signed jersey patch relic parallel
refractor prizm topps panini chrome bowman upper deck sports baseball
basketball football soccer hockey nba nfl mlb lebron jordan kobe brady messi
yugioh magic gathering mtg lorcana holo foil first edition shadowless
japanese english rare ultra secret promo slab break hobby retail blaster
tin elite trainer collector

sneakers sneaker shoes shoe nike adidas yeezy dunk low high retro air max
force size balance running boots

vintage antique collectible collectibles collection
watches watch rolex omega seiko casio submariner daytona automatic quartz
chronograph gold silver steel diamond dial bracelet strap
handbags handbag bag purse wallet louis vuitton gucci chanel hermes prada
leather designer luxury authentic
comics comic marvel dc spiderman batman superman issue variant cover
coins coin bullion morgan dollar penny cent ounce oz proof uncirculated
jewelry necklace ring earrings pendant chain gemstone pearl
funko pop vinyl figure toys toy lego set action plush anime
clothing streetwear hoodie shirt jacket denim jeans supreme
video games game nintendo playstation xbox console
books book records record electronics phone iphone camera
beauty makeup skincare fragrance perfume home decor art print poster

live auction bid bidding seller buyer shop show stream giveaway free shipping
deal price sale buy sell starting ending tonight today now lot bundle
mystery grail hits hit pull rip ripping case

the a an and or of to in on for with at from by is are was be this that it
my your our we you i all new best big small great good more most only just
get got old very not no yes up out off over under last next every each some
any how what who when where why one two three four five day night week time
year love like look see come go check open opening full complete original
condition excellent used near brand quality limited exclusive special value
cheap

black white red blue green yellow pink purple orange brown grey
`)

// Vocabulary returns the tokenizer vocabulary in id order: the special tokens
// [PAD] [UNK] [CLS] [SEP] [MASK] (ids 0–4), then the marketplace words.
func Vocabulary() []string {
	out := make([]string, 0, len(specialTokens)+len(vocabWords))
	out = append(out, specialTokens...)
	return append(out, vocabWords...)
}
