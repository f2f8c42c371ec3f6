//! Word lists and reference tables the demo company is drawn from. They are `'static` so that
//! generating a million contacts never rebuilds a list: each contact only picks indices.

use crate::capture::FunnelStage;

/// A city a contact or account can sit in; coordinates are real so that "distance from a
/// point" segments give sensible answers.
#[derive(Debug)]
pub(super) struct City {
    pub name: &'static str,
    pub lat: f64,
    pub lon: f64,
    pub tz: &'static str,
    /// Standard-time offset from UTC in hours: enough to put actions into the local working day.
    pub utc: i64,
}

#[derive(Debug)]
pub(super) struct Country {
    pub code: &'static str,
    /// The sales region, spelled as reps' regions are, so that geographic routing matches.
    pub region: &'static str,
    pub weight: f64,
    pub tld: &'static str,
    /// Index into [`NAME_GROUPS`].
    pub names: usize,
    pub language: &'static str,
    pub phone: &'static str,
    pub legal: &'static [&'static str],
    pub cities: &'static [City],
}

const fn city(name: &'static str, lat: f64, lon: f64, tz: &'static str, utc: i64) -> City {
    City {
        name,
        lat,
        lon,
        tz,
        utc,
    }
}

const DE: usize = 0;
const NL: usize = 1;
const SV: usize = 2;
const DA: usize = 3;
const EN: usize = 4;
const FR: usize = 5;
/// Index of the international name group mixed into every country.
pub(super) const INTERNATIONAL: usize = 6;

pub(super) const COUNTRIES: [Country; 12] = [
    Country {
        code: "DE",
        region: "DACH",
        weight: 22.0,
        tld: "de",
        names: DE,
        language: "de",
        phone: "+49",
        legal: &["GmbH", "GmbH", "AG", "GmbH & Co. KG"],
        cities: &[
            city("Berlin", 52.520, 13.405, "Europe/Berlin", 1),
            city("Munich", 48.137, 11.575, "Europe/Berlin", 1),
            city("Hamburg", 53.551, 9.994, "Europe/Berlin", 1),
            city("Frankfurt", 50.110, 8.682, "Europe/Berlin", 1),
            city("Cologne", 50.938, 6.960, "Europe/Berlin", 1),
            city("Stuttgart", 48.776, 9.183, "Europe/Berlin", 1),
            city("Düsseldorf", 51.227, 6.774, "Europe/Berlin", 1),
            city("Leipzig", 51.340, 12.375, "Europe/Berlin", 1),
        ],
    },
    Country {
        code: "AT",
        region: "DACH",
        weight: 5.0,
        tld: "at",
        names: DE,
        language: "de",
        phone: "+43",
        legal: &["GmbH", "AG"],
        cities: &[
            city("Vienna", 48.208, 16.373, "Europe/Vienna", 1),
            city("Graz", 47.071, 15.439, "Europe/Vienna", 1),
            city("Linz", 48.306, 14.286, "Europe/Vienna", 1),
            city("Salzburg", 47.809, 13.055, "Europe/Vienna", 1),
        ],
    },
    Country {
        code: "CH",
        region: "DACH",
        weight: 5.0,
        tld: "ch",
        names: DE,
        language: "de",
        phone: "+41",
        legal: &["AG", "GmbH"],
        cities: &[
            city("Zurich", 47.377, 8.541, "Europe/Zurich", 1),
            city("Geneva", 46.204, 6.143, "Europe/Zurich", 1),
            city("Basel", 47.560, 7.589, "Europe/Zurich", 1),
            city("Bern", 46.948, 7.447, "Europe/Zurich", 1),
        ],
    },
    Country {
        code: "NL",
        region: "Benelux",
        weight: 8.0,
        tld: "nl",
        names: NL,
        language: "nl",
        phone: "+31",
        legal: &["B.V.", "B.V.", "N.V."],
        cities: &[
            city("Amsterdam", 52.368, 4.904, "Europe/Amsterdam", 1),
            city("Rotterdam", 51.924, 4.478, "Europe/Amsterdam", 1),
            city("Utrecht", 52.091, 5.122, "Europe/Amsterdam", 1),
            city("Eindhoven", 51.441, 5.470, "Europe/Amsterdam", 1),
        ],
    },
    Country {
        code: "BE",
        region: "Benelux",
        weight: 4.0,
        tld: "be",
        names: NL,
        language: "nl",
        phone: "+32",
        legal: &["NV", "BV", "SA"],
        cities: &[
            city("Brussels", 50.850, 4.352, "Europe/Brussels", 1),
            city("Antwerp", 51.219, 4.402, "Europe/Brussels", 1),
            city("Ghent", 51.054, 3.717, "Europe/Brussels", 1),
        ],
    },
    Country {
        code: "SE",
        region: "Nordics",
        weight: 5.0,
        tld: "se",
        names: SV,
        language: "sv",
        phone: "+46",
        legal: &["AB"],
        cities: &[
            city("Stockholm", 59.329, 18.069, "Europe/Stockholm", 1),
            city("Gothenburg", 57.709, 11.975, "Europe/Stockholm", 1),
            city("Malmö", 55.605, 13.004, "Europe/Stockholm", 1),
        ],
    },
    Country {
        code: "DK",
        region: "Nordics",
        weight: 3.0,
        tld: "dk",
        names: DA,
        language: "da",
        phone: "+45",
        legal: &["A/S", "ApS"],
        cities: &[
            city("Copenhagen", 55.676, 12.568, "Europe/Copenhagen", 1),
            city("Aarhus", 56.163, 10.204, "Europe/Copenhagen", 1),
            city("Odense", 55.404, 10.402, "Europe/Copenhagen", 1),
        ],
    },
    Country {
        code: "GB",
        region: "UK&I",
        weight: 14.0,
        tld: "co.uk",
        names: EN,
        language: "en",
        phone: "+44",
        legal: &["Ltd", "Ltd", "plc"],
        cities: &[
            city("London", 51.507, -0.128, "Europe/London", 0),
            city("Manchester", 53.481, -2.243, "Europe/London", 0),
            city("Birmingham", 52.486, -1.890, "Europe/London", 0),
            city("Leeds", 53.801, -1.549, "Europe/London", 0),
            city("Bristol", 51.455, -2.588, "Europe/London", 0),
            city("Edinburgh", 55.953, -3.188, "Europe/London", 0),
        ],
    },
    Country {
        code: "IE",
        region: "UK&I",
        weight: 3.0,
        tld: "ie",
        names: EN,
        language: "en",
        phone: "+353",
        legal: &["Ltd", "DAC"],
        cities: &[
            city("Dublin", 53.350, -6.260, "Europe/Dublin", 0),
            city("Cork", 51.899, -8.476, "Europe/Dublin", 0),
            city("Galway", 53.271, -9.057, "Europe/Dublin", 0),
        ],
    },
    Country {
        code: "US",
        region: "North America",
        weight: 18.0,
        tld: "com",
        names: EN,
        language: "en",
        phone: "+1",
        legal: &["Inc.", "LLC", "Corp."],
        cities: &[
            city("New York", 40.713, -74.006, "America/New_York", -5),
            city("Boston", 42.360, -71.059, "America/New_York", -5),
            city("Atlanta", 33.749, -84.388, "America/New_York", -5),
            city("Chicago", 41.878, -87.630, "America/Chicago", -6),
            city("Austin", 30.267, -97.743, "America/Chicago", -6),
            city("Denver", 39.739, -104.990, "America/Denver", -7),
            city("Seattle", 47.606, -122.332, "America/Los_Angeles", -8),
            city("San Francisco", 37.775, -122.419, "America/Los_Angeles", -8),
        ],
    },
    Country {
        code: "CA",
        region: "North America",
        weight: 5.0,
        tld: "ca",
        names: EN,
        language: "en",
        phone: "+1",
        legal: &["Inc.", "Ltd."],
        cities: &[
            city("Toronto", 43.653, -79.383, "America/Toronto", -5),
            city("Montreal", 45.502, -73.567, "America/Toronto", -5),
            city("Vancouver", 49.283, -123.121, "America/Vancouver", -8),
            city("Calgary", 51.045, -114.072, "America/Edmonton", -7),
        ],
    },
    Country {
        code: "FR",
        region: "France",
        weight: 8.0,
        tld: "fr",
        names: FR,
        language: "fr",
        phone: "+33",
        legal: &["SAS", "SA", "SARL"],
        cities: &[
            city("Paris", 48.857, 2.352, "Europe/Paris", 1),
            city("Lyon", 45.764, 4.836, "Europe/Paris", 1),
            city("Marseille", 43.296, 5.370, "Europe/Paris", 1),
            city("Toulouse", 43.605, 1.444, "Europe/Paris", 1),
            city("Lille", 50.629, 3.057, "Europe/Paris", 1),
        ],
    },
];

#[derive(Debug)]
pub(super) struct NameGroup {
    pub female: &'static [&'static str],
    pub male: &'static [&'static str],
    pub last: &'static [&'static str],
}

pub(super) const NAME_GROUPS: [NameGroup; 7] = [
    NameGroup {
        female: &[
            "Anna",
            "Laura",
            "Julia",
            "Lena",
            "Sarah",
            "Katharina",
            "Lisa",
            "Hannah",
            "Sophie",
            "Marie",
            "Jana",
            "Christina",
            "Sabine",
            "Claudia",
            "Petra",
            "Miriam",
            "Franziska",
            "Johanna",
            "Nicole",
            "Stefanie",
        ],
        male: &[
            "Thomas",
            "Michael",
            "Andreas",
            "Stefan",
            "Markus",
            "Christian",
            "Tobias",
            "Jan",
            "Lukas",
            "Felix",
            "Maximilian",
            "Florian",
            "Sebastian",
            "Matthias",
            "Daniel",
            "Jörg",
            "Jürgen",
            "Uwe",
            "Tim",
            "Philipp",
        ],
        last: &[
            "Müller",
            "Schmidt",
            "Schneider",
            "Fischer",
            "Weber",
            "Meyer",
            "Wagner",
            "Becker",
            "Schulz",
            "Hoffmann",
            "Schäfer",
            "Koch",
            "Bauer",
            "Richter",
            "Klein",
            "Wolf",
            "Schröder",
            "Neumann",
            "Schwarz",
            "Zimmermann",
            "Braun",
            "Krüger",
            "Hartmann",
            "Lange",
            "Huber",
            "Gruber",
            "Steiner",
            "Moser",
            "Keller",
            "Brunner",
            "Frei",
            "Vogel",
        ],
    },
    NameGroup {
        female: &[
            "Emma", "Sanne", "Lotte", "Anouk", "Fleur", "Eva", "Lieke", "Femke", "Iris", "Noor",
            "Marloes", "Esther", "Sofie", "Elke",
        ],
        male: &[
            "Daan", "Bram", "Sem", "Thijs", "Ruben", "Jeroen", "Pieter", "Joost", "Sander",
            "Wouter", "Koen", "Maarten", "Bart", "Tom",
        ],
        last: &[
            "de Jong",
            "Jansen",
            "de Vries",
            "van den Berg",
            "van Dijk",
            "Bakker",
            "Janssen",
            "Visser",
            "Smit",
            "Meijer",
            "de Boer",
            "Mulder",
            "Peeters",
            "Maes",
            "Claes",
            "Willems",
            "Goossens",
            "Wouters",
            "Dekker",
            "Vermeulen",
        ],
    },
    NameGroup {
        female: &[
            "Anna", "Emma", "Maja", "Elin", "Ida", "Sara", "Linnea", "Klara", "Frida", "Ebba",
            "Karin", "Sofia",
        ],
        male: &[
            "Erik", "Lars", "Anders", "Johan", "Karl", "Oskar", "Nils", "Björn", "Gustav",
            "Magnus", "Per", "Axel",
        ],
        last: &[
            "Andersson",
            "Johansson",
            "Karlsson",
            "Nilsson",
            "Eriksson",
            "Larsson",
            "Olsson",
            "Persson",
            "Svensson",
            "Gustafsson",
            "Lindberg",
            "Lindqvist",
            "Berg",
            "Holm",
        ],
    },
    NameGroup {
        female: &[
            "Mette", "Camilla", "Sofie", "Ida", "Freja", "Louise", "Line", "Signe", "Astrid",
            "Karen", "Maria", "Emma",
        ],
        male: &[
            "Søren",
            "Rasmus",
            "Mads",
            "Anders",
            "Frederik",
            "Mikkel",
            "Jesper",
            "Henrik",
            "Niels",
            "Christian",
            "Jens",
            "Kasper",
        ],
        last: &[
            "Nielsen",
            "Jensen",
            "Hansen",
            "Pedersen",
            "Andersen",
            "Christensen",
            "Larsen",
            "Sørensen",
            "Rasmussen",
            "Jørgensen",
            "Madsen",
            "Kristensen",
            "Poulsen",
            "Møller",
        ],
    },
    NameGroup {
        female: &[
            "Emily",
            "Olivia",
            "Sophie",
            "Charlotte",
            "Jessica",
            "Hannah",
            "Amelia",
            "Grace",
            "Lucy",
            "Chloe",
            "Emma",
            "Sarah",
            "Rachel",
            "Megan",
            "Jennifer",
            "Ashley",
            "Lauren",
            "Aoife",
            "Siobhan",
            "Niamh",
        ],
        male: &[
            "James",
            "Oliver",
            "Jack",
            "Harry",
            "George",
            "Thomas",
            "William",
            "Daniel",
            "Matthew",
            "Michael",
            "David",
            "Christopher",
            "Ryan",
            "Andrew",
            "Joshua",
            "Liam",
            "Sean",
            "Conor",
            "Patrick",
            "Brian",
        ],
        last: &[
            "Smith",
            "Jones",
            "Williams",
            "Taylor",
            "Brown",
            "Davies",
            "Evans",
            "Wilson",
            "Thomas",
            "Johnson",
            "Roberts",
            "Walker",
            "Wright",
            "Robinson",
            "Thompson",
            "Murphy",
            "Kelly",
            "O'Sullivan",
            "Walsh",
            "Byrne",
            "Miller",
            "Davis",
            "Garcia",
            "Martinez",
            "Anderson",
            "Clark",
            "Lewis",
            "Young",
            "Campbell",
            "Tremblay",
        ],
    },
    NameGroup {
        female: &[
            "Camille", "Léa", "Manon", "Chloé", "Inès", "Julie", "Claire", "Sophie", "Élodie",
            "Amélie", "Céline", "Nathalie",
        ],
        male: &[
            "Lucas",
            "Hugo",
            "Louis",
            "Nicolas",
            "Julien",
            "Thomas",
            "Antoine",
            "Pierre",
            "François",
            "Mathieu",
            "Olivier",
            "Guillaume",
        ],
        last: &[
            "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand",
            "Leroy", "Moreau", "Simon", "Laurent", "Lefèvre", "Michel", "Garnier", "Rousseau",
            "Fontaine", "Girard",
        ],
    },
    NameGroup {
        female: &[
            "Aylin",
            "Zeynep",
            "Priya",
            "Mei",
            "Fatima",
            "Agnieszka",
            "Elena",
            "Maria",
            "Ana",
            "Yuki",
        ],
        male: &[
            "Mehmet", "Arjun", "Wei", "Ahmed", "Piotr", "Luca", "Marco", "Carlos", "Dmitri",
            "Kenji",
        ],
        last: &[
            "Yilmaz",
            "Kaya",
            "Sharma",
            "Patel",
            "Chen",
            "Wang",
            "Kowalski",
            "Nowak",
            "Rossi",
            "Ferrari",
            "García",
            "Fernández",
            "Popescu",
            "Ivanov",
            "Tanaka",
            "Haddad",
        ],
    },
];

/// Free-mail providers some leads sign up with instead of their work address.
pub(super) const FREE_MAIL: [&str; 6] = [
    "gmail.com",
    "outlook.com",
    "gmx.de",
    "web.de",
    "yahoo.com",
    "hotmail.co.uk",
];

pub(super) const INDUSTRIES: [&str; 8] = [
    "Logistics",
    "Manufacturing",
    "Software",
    "Healthcare",
    "Retail",
    "Financial Services",
    "Construction",
    "Education",
];
pub(super) const INDUSTRY_WEIGHTS: [f64; 8] = [14.0, 18.0, 14.0, 12.0, 12.0, 10.0, 12.0, 8.0];

/// Words that follow a company's name and tell its trade, per industry (same order as
/// [`INDUSTRIES`]).
pub(super) const INDUSTRY_WORDS: [[&str; 4]; 8] = [
    ["Logistics", "Freight", "Transport", "Shipping"],
    ["Industries", "Manufacturing", "Components", "Works"],
    ["Software", "Digital", "Systems", "Labs"],
    ["Health", "Medical", "Clinics", "Care"],
    ["Retail", "Stores", "Markets", "Trading"],
    ["Finance", "Capital", "Insurance", "Advisors"],
    ["Construction", "Building", "Builders", "Engineering"],
    ["Academy", "Learning", "Education", "Institute"],
];

/// First halves of company names. Together with the second halves below they make names like
/// "Rheinfracht" or "Polarwave"; both lists are lower-case-safe ASCII so domains derive directly.
pub(super) const NAME_PREFIXES: [&str; 60] = [
    "Nord", "Alpen", "Rhein", "Atlas", "Blue", "Summit", "Polar", "Hansa", "Delta", "Vista",
    "Nova", "Terra", "Aqua", "Silver", "Green", "Iron", "Oak", "Cedar", "Falcon", "Harbor",
    "Pioneer", "Crest", "Bright", "Swift", "Prime", "Apex", "Lumen", "Orbit", "Vector", "Meridian",
    "Granite", "Maple", "West", "East", "Sun", "Sky", "River", "Stone", "Bay", "Fjord", "Elbe",
    "Donau", "Linden", "Birch", "Eagle", "Lynx", "Ember", "Quantum", "Zenith", "Baltic", "Alder",
    "Heron", "Kestrel", "Solid", "Clear", "True", "Copper", "Amber", "Coral", "Willow",
];

/// Second halves of account names.
pub(super) const ACCOUNT_CORES: [&str; 40] = [
    "tech", "log", "bau", "med", "soft", "trans", "werk", "data", "line", "print", "care", "trade",
    "build", "freight", "metal", "plast", "food", "pharm", "fin", "edu", "shop", "mart", "works",
    "wave", "point", "gate", "field", "port", "form", "net", "path", "core", "flow", "mark",
    "haus", "ware", "cargo", "tools", "parts", "hub",
];

/// Second halves of the names of companies leads work at that are not (yet) customers: a
/// separate list so that a lead's email domain never accidentally matches an account's.
pub(super) const LEAD_CORES: [&str; 24] = [
    "vision", "sphere", "bridge", "motion", "logic", "craft", "scope", "nexus", "pulse", "quest",
    "rise", "spark", "stream", "tide", "vale", "yard", "zone", "grid", "loop", "mill", "peak",
    "rock", "star", "wind",
];

/// Third words that keep account names unique once the two-part combinations run out.
pub(super) const NAME_THIRDS: [&str; 40] = [
    "group",
    "systems",
    "partners",
    "solutions",
    "services",
    "holding",
    "international",
    "europe",
    "direct",
    "plus",
    "one",
    "pro",
    "united",
    "global",
    "nordic",
    "central",
    "digital",
    "connect",
    "select",
    "premium",
    "north",
    "south",
    "west",
    "east",
    "alpha",
    "beta",
    "gamma",
    "omega",
    "first",
    "next",
    "smart",
    "green",
    "blue",
    "red",
    "gold",
    "metro",
    "city",
    "valley",
    "coast",
    "bridge",
];

#[derive(Debug)]
pub(super) struct Title {
    pub title: &'static str,
    pub seniority: &'static str,
    pub occupation: &'static str,
    pub weight: f64,
}

const fn title(
    title: &'static str,
    seniority: &'static str,
    occupation: &'static str,
    weight: f64,
) -> Title {
    Title {
        title,
        seniority,
        occupation,
        weight,
    }
}

pub(super) const TITLES: [Title; 20] = [
    title("Chief Information Officer", "c-level", "IT", 3.0),
    title("Chief Financial Officer", "c-level", "Finance", 2.0),
    title("Managing Director", "c-level", "Management", 4.0),
    title("CEO", "c-level", "Management", 3.0),
    title("VP of IT", "vp", "IT", 2.0),
    title("VP Operations", "vp", "Operations", 2.0),
    title("Head of IT", "director", "IT", 7.0),
    title("IT Director", "director", "IT", 5.0),
    title("Finance Director", "director", "Finance", 2.0),
    title("IT Manager", "manager", "IT", 12.0),
    title("Operations Manager", "manager", "Operations", 6.0),
    title("Office Manager", "manager", "Administration", 6.0),
    title("Information Security Officer", "senior", "IT", 4.0),
    title("Senior System Administrator", "senior", "IT", 7.0),
    title("System Administrator", "mid", "IT", 10.0),
    title("IT Specialist", "mid", "IT", 8.0),
    title("Procurement Specialist", "mid", "Procurement", 4.0),
    title("Controller", "mid", "Finance", 4.0),
    title("Junior IT Administrator", "junior", "IT", 4.0),
    title("IT Support Technician", "junior", "IT", 5.0),
];

pub(super) const EDUCATION: [(&str, f64); 5] = [
    ("Apprenticeship", 20.0),
    ("Bachelor", 35.0),
    ("Master", 32.0),
    ("PhD", 5.0),
    ("High school", 8.0),
];

pub(super) const INTERESTS: [&str; 10] = [
    "cloud",
    "security",
    "backup",
    "compliance",
    "automation",
    "ai",
    "remote work",
    "cost reduction",
    "networking",
    "gdpr",
];

pub(super) const VALUES: [&str; 6] = [
    "reliability",
    "innovation",
    "price",
    "service quality",
    "sustainability",
    "security",
];

/// One product of the demo company's catalogue. Recurring products carry monthly plan prices
/// (cents, for a mid-sized customer); one-off products a typical order amount.
#[derive(Debug)]
pub(super) struct Product {
    pub name: &'static str,
    pub recurring: bool,
    /// Recurring: (plan, monthly cents), lowest tier first. One-off: one entry with the median
    /// order amount. Licences are priced per seat.
    pub plans: &'static [(&'static str, i64)],
}

pub(super) const MANAGED_SUPPORT: usize = 0;
pub(super) const CLOUD_BACKUP: usize = 1;
pub(super) const SECURITY_MONITORING: usize = 2;
pub(super) const LICENCES: usize = 3;
pub(super) const CONSULTING: usize = 4;
pub(super) const TRAINING: usize = 5;
pub(super) const ONBOARDING: usize = 6;
pub(super) const DATA_MIGRATION: usize = 7;

pub(super) const PRODUCTS: [Product; 8] = [
    Product {
        name: "Managed Support",
        recurring: true,
        plans: &[
            ("Basic", 90_000),
            ("Standard", 190_000),
            ("Premium", 420_000),
        ],
    },
    Product {
        name: "Cloud Backup",
        recurring: true,
        plans: &[("S", 15_000), ("M", 42_000), ("L", 110_000)],
    },
    Product {
        name: "Security Monitoring",
        recurring: true,
        plans: &[
            ("Essentials", 65_000),
            ("Pro", 150_000),
            ("Enterprise", 360_000),
        ],
    },
    Product {
        name: "Licences",
        recurring: true,
        plans: &[("Business", 1_250), ("Business Premium", 2_200)],
    },
    Product {
        name: "Consulting",
        recurring: false,
        plans: &[("Days", 480_000)],
    },
    Product {
        name: "Training",
        recurring: false,
        plans: &[("Course", 250_000)],
    },
    Product {
        name: "Onboarding Project",
        recurring: false,
        plans: &[("Project", 1_200_000)],
    },
    Product {
        name: "Data Migration",
        recurring: false,
        plans: &[("Project", 800_000)],
    },
];

/// A lead magnet of the demo company, with the landing page its form sits on.
#[derive(Debug)]
pub(super) struct MagnetSpec {
    pub slug: &'static str,
    pub name: &'static str,
    pub kind: &'static str,
    pub stage: FunnelStage,
    pub landing: &'static str,
}

const fn magnet(
    slug: &'static str,
    name: &'static str,
    kind: &'static str,
    stage: FunnelStage,
    landing: &'static str,
) -> MagnetSpec {
    MagnetSpec {
        slug,
        name,
        kind,
        stage,
        landing,
    }
}

pub(super) const MAGNETS: [MagnetSpec; 9] = [
    magnet(
        "it-security-checklist",
        "IT Security Checklist for SMEs",
        "checklist",
        FunnelStage::Top,
        "/resources/it-security-checklist",
    ),
    magnet(
        "managed-it-ebook",
        "The Managed IT Handbook",
        "ebook",
        FunnelStage::Top,
        "/resources/managed-it-ebook",
    ),
    magnet(
        "it-budget-template",
        "IT Budget Planning Template",
        "template",
        FunnelStage::Top,
        "/resources/it-budget-template",
    ),
    magnet(
        "ransomware-webinar",
        "Webinar: Ransomware Readiness in 60 Minutes",
        "webinar",
        FunnelStage::Middle,
        "/webinars/ransomware-readiness",
    ),
    magnet(
        "logistics-case-study",
        "Case Study: How a Logistics Firm Cut Downtime by 60%",
        "case study",
        FunnelStage::Middle,
        "/case-studies/logistics-downtime",
    ),
    magnet(
        "cloud-backup-white-paper",
        "White Paper: Cloud Backup Strategies",
        "white paper",
        FunnelStage::Middle,
        "/resources/cloud-backup-white-paper",
    ),
    magnet(
        "live-demo",
        "Live Demo: Security Monitoring",
        "live demo",
        FunnelStage::Bottom,
        "/demo",
    ),
    magnet(
        "free-trial",
        "14-Day Free Trial: Security Monitoring",
        "free trial",
        FunnelStage::Bottom,
        "/trial",
    ),
    magnet(
        "free-consultation",
        "Free IT Consultation",
        "free consultation",
        FunnelStage::Bottom,
        "/consultation",
    ),
];

pub(super) const TOP_MAGNETS: [usize; 3] = [0, 1, 2];
pub(super) const MIDDLE_MAGNETS: [usize; 3] = [3, 4, 5];
/// Bottom-of-funnel offers that put a lead in front of sales.
pub(super) const TALK_MAGNETS: [usize; 2] = [6, 8];
pub(super) const TRIAL_MAGNET: usize = 7;

/// The newsletter sign-up form, the one form without a lead magnet.
pub(super) const NEWSLETTER_FORM: &str = "newsletter";

pub(super) const PRICING: &str = "/pricing";

pub(super) const BLOG: [&str; 12] = [
    "/blog/ransomware-checklist-for-smes",
    "/blog/backup-3-2-1-rule",
    "/blog/microsoft-365-licensing-explained",
    "/blog/gdpr-and-cloud-backups",
    "/blog/it-budget-planning",
    "/blog/zero-trust-basics",
    "/blog/managed-vs-in-house-it",
    "/blog/phishing-training-that-works",
    "/blog/nis2-what-changes",
    "/blog/patch-management-without-downtime",
    "/blog/choosing-an-msp",
    "/blog/ai-in-the-helpdesk",
];

pub(super) const FEATURES: [&str; 6] = [
    "/features/managed-support",
    "/features/cloud-backup",
    "/features/security-monitoring",
    "/features/licences",
    "/features/consulting",
    "/features/training",
];

pub(super) const CASE_STUDIES: [&str; 5] = [
    "/case-studies/logistics-downtime",
    "/case-studies/hospital-backup",
    "/case-studies/retail-chain-security",
    "/case-studies/manufacturer-migration",
    "/case-studies/school-district-devices",
];

pub(super) const GENERAL_PAGES: [&str; 5] = ["/", "/about", "/contact", "/partners", "/careers"];

pub(super) const CUSTOMER_PAGES: [&str; 5] = [
    "/support",
    "/docs/getting-started",
    "/docs/backup-restore",
    "/docs/security-alerts",
    "/portal/invoices",
];

/// Where leads come from, with what paid campaigns cost per lead.
#[derive(Debug)]
pub(super) struct Source {
    pub name: &'static str,
    pub weight: f64,
    /// Share of this source's leads that came through a paid campaign.
    pub paid_share: f64,
    pub paid_medium: &'static str,
    pub organic_medium: &'static str,
    pub campaigns: &'static [(&'static str, f64)],
    pub cpl_cents: i64,
    pub referrer: Option<&'static str>,
}

pub(super) const SOURCES: [Source; 7] = [
    Source {
        name: "google",
        weight: 30.0,
        paid_share: 0.7,
        paid_medium: "cpc",
        organic_medium: "organic",
        campaigns: &[
            ("brand-search", 0.35),
            ("managed-it-generic", 0.45),
            ("competitor-terms", 0.2),
        ],
        cpl_cents: 6_000,
        referrer: Some("https://www.google.com/"),
    },
    Source {
        name: "linkedin",
        weight: 18.0,
        paid_share: 0.8,
        paid_medium: "paid_social",
        organic_medium: "social",
        campaigns: &[("it-directors-dach", 0.5), ("security-webinar-promo", 0.5)],
        cpl_cents: 11_000,
        referrer: Some("https://www.linkedin.com/"),
    },
    Source {
        name: "facebook",
        weight: 10.0,
        paid_share: 0.9,
        paid_medium: "paid_social",
        organic_medium: "social",
        campaigns: &[("retargeting", 0.6), ("ebook-promo", 0.4)],
        cpl_cents: 4_500,
        referrer: Some("https://www.facebook.com/"),
    },
    Source {
        name: "newsletter",
        weight: 8.0,
        paid_share: 1.0,
        paid_medium: "sponsorship",
        organic_medium: "email",
        campaigns: &[("it-weekly-sponsorship", 1.0)],
        cpl_cents: 3_000,
        referrer: None,
    },
    Source {
        name: "partner",
        weight: 8.0,
        paid_share: 1.0,
        paid_medium: "partner",
        organic_medium: "partner",
        campaigns: &[("partner-comarketing", 1.0)],
        cpl_cents: 5_000,
        referrer: Some("https://partners.example.net/"),
    },
    Source {
        name: "direct",
        weight: 14.0,
        paid_share: 0.0,
        paid_medium: "none",
        organic_medium: "none",
        campaigns: &[],
        cpl_cents: 0,
        referrer: None,
    },
    Source {
        name: "referral",
        weight: 12.0,
        paid_share: 0.0,
        paid_medium: "referral",
        organic_medium: "referral",
        campaigns: &[],
        cpl_cents: 0,
        referrer: Some("https://www.it-forum.example.org/"),
    },
];

pub(super) const LOST_REASONS: [(&str, f64); 5] = [
    ("price", 30.0),
    ("timing", 20.0),
    ("no decision", 25.0),
    ("competitor", 18.0),
    ("features", 7.0),
];

/// Fictional competitors, so that the demo never puts words in a real company's mouth.
pub(super) const COMPETITORS: [&str; 5] = [
    "ByteShield",
    "CloudCastle",
    "NetGuardian",
    "Helix IT",
    "Stackwise",
];

pub(super) const CALL_SUBJECTS: [&str; 6] = [
    "Check-in call",
    "Renewal discussion",
    "Support escalation follow-up",
    "Invoice question",
    "Usage review",
    "Introduction of new IT manager",
];
pub(super) const MEETING_SUBJECTS: [&str; 5] = [
    "Quarterly business review",
    "On-site visit",
    "Onboarding workshop",
    "Roadmap presentation",
    "Security review",
];
pub(super) const EMAIL_SUBJECTS: [&str; 6] = [
    "Follow-up on open ticket",
    "Renewal reminder",
    "Product update",
    "Training dates",
    "Proposal: additional services",
    "Meeting notes",
];
pub(super) const NOTE_SUBJECTS: [&str; 6] = [
    "Customer considering a competitor",
    "Budget approved for next year",
    "New IT manager started",
    "Happy with support response times",
    "Asked about Security Monitoring",
    "Planning an office move",
];

/// Newsletter issue names; the window holds at most nine nine-weekly issues.
pub(super) const NEWSLETTERS: [&str; 12] = [
    "newsletter-01",
    "newsletter-02",
    "newsletter-03",
    "newsletter-04",
    "newsletter-05",
    "newsletter-06",
    "newsletter-07",
    "newsletter-08",
    "newsletter-09",
    "newsletter-10",
    "newsletter-11",
    "newsletter-12",
];

/// Customer newsletter issues: quarterly, because customers get a lower frequency cap.
pub(super) const CUSTOMER_NEWS: [&str; 8] = [
    "customer-news-1",
    "customer-news-2",
    "customer-news-3",
    "customer-news-4",
    "customer-news-5",
    "customer-news-6",
    "customer-news-7",
    "customer-news-8",
];
