/**
 * A seeded, reproducible production-like dataset (seed slide 18): users with realistic names and
 * emails, groups, memberships. Every item is a pure function of (seed, index), so a load test can
 * pick user 123,456 and know its id and email without holding the dataset in memory, and two runs
 * with one seed produce the same data byte for byte.
 *
 * Collisions exercise uniqueness: about 1% of users reuse an earlier user's email and 0.5% an
 * earlier username, in another letter case. Loading must refuse exactly those (`collides`).
 * Group sizes are skewed (a few big groups, many small ones); membership pairs may repeat, and a
 * repeated add records nothing.
 */

export interface DatasetSize {
  users: number;
  groups: number;
  memberships: number;
}

export const FULL_SIZE: DatasetSize = { users: 1_000_000, groups: 50_000, memberships: 5_000_000 };

const FIRST = [
  'Homer',
  'Marge',
  'Bart',
  'Lisa',
  'Maggie',
  'Ned',
  'Maude',
  'Rod',
  'Todd',
  'Moe',
  'Barney',
  'Lenny',
  'Carl',
  'Apu',
  'Manjula',
  'Seymour',
  'Edna',
  'Waylon',
  'Montgomery',
  'Clancy',
  'Ralph',
  'Milhouse',
  'Nelson',
  'Martin',
  'Sherri',
  'Terri',
  'Otto',
  'Patty',
  'Selma',
  'Abraham',
  'Mona',
  'Julius',
  'Troy',
  'Lionel',
  'Kent',
  'Jasper',
  'Agnes',
  'Luann',
  'Kirk',
  'Helen',
  'Timothy',
  'Cletus',
  'Brandine',
  'Gil',
  'Herschel',
  'Krusty',
  'Bob',
  'Cecil',
  'Wendell',
  'Lewis',
  'Janey',
  'Allison',
  'Ana',
  'Björn',
  'Chloé',
  'Dmitri',
  'Émile',
  'Fatima',
  'Giulia',
  'Hiroshi',
  'Ingrid',
  'José',
  'Kwame',
  'Leilani',
  'Mei',
  'Nikolai',
  'Olga',
  'Priya',
  'Quentin',
  'Rosa',
  'Søren',
  'Tomás',
  'Uma',
  'Valentina',
  'Wei',
  'Ximena',
  'Yusuf',
  'Zoë',
];
const LAST = [
  'Simpson',
  'Flanders',
  'Szyslak',
  'Gumble',
  'Leonard',
  'Carlson',
  'Nahasapeemapetilon',
  'Skinner',
  'Krabappel',
  'Smithers',
  'Burns',
  'Wiggum',
  'Van Houten',
  'Muntz',
  'Prince',
  'Bouvier',
  'Hibbert',
  'McClure',
  'Brockman',
  'Lovejoy',
  'Spuckler',
  'Frink',
  'Terwilliger',
  'Krustofsky',
  'Borton',
  'Hoover',
  'Powell',
  'Chalmers',
  'Kashmir',
  'Quimby',
  'Zweig',
  'Nguyen',
  'García',
  'Müller',
  'Rossi',
  'Kowalski',
  'Tanaka',
  'Okafor',
  'Andersen',
  'Ivanova',
  'Dubois',
  'Silva',
  'Haddad',
  'Kim',
  'Larsen',
  'Novak',
  'Papadopoulos',
  'Schmidt',
  'Yamamoto',
  'Ó Briain',
];
const DOMAINS = ['springfield.org', 'shelbyville.net', 'example.com', 'mail.test', 'powerplant.io', 'kwik-e-mart.biz', 'krusty.tv'];
const ADJECTIVES = ['Nuclear', 'Evening', 'Stonecutters', 'Jazz', 'Bowling', 'Choir', 'Safety', 'Donut', 'Monorail', 'Book'];
const NOUNS = ['Team', 'Club', 'Society', 'League', 'Committee', 'Crew', 'Guild', 'Circle', 'Council', 'Band'];

/** A 32-bit hash of (seed, salt, index): splitmix-style mixing, stable across runs and platforms. */
function hash(seed: number, salt: number, index: number): number {
  let x = (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(salt + 1, 0xc2b2ae35) ^ Math.imul(index + 1, 0x27d4eb2f)) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d) >>> 0;
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}
/** A float in [0, 1) from (seed, salt, index). */
const unit = (seed: number, salt: number, index: number) => hash(seed, salt, index) / 2 ** 32;
const pick = <T>(list: readonly T[], seed: number, salt: number, index: number): T => list[hash(seed, salt, index) % list.length] as T;

const SALT = {
  id: 1,
  first: 2,
  last: 3,
  domain: 4,
  emailCollision: 5,
  usernameCollision: 6,
  source: 7,
  group: 8,
  memberGroup: 9,
  memberUser: 10,
  groupName: 11,
  cased: 12,
};

/** A UUID (version 4 layout) that is a pure function of (seed, kind, index). */
function uuidOf(seed: number, kind: number, index: number): string {
  const hex = [0, 1, 2, 3]
    .map((k) =>
      hash(seed, kind * 16 + k, index)
        .toString(16)
        .padStart(8, '0'),
    )
    .join('');
  const variant = ((Number.parseInt(hex[16] as string, 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** Flips the letter case of some characters: the same key, compared case-insensitively. */
function recase(text: string, seed: number, index: number): string {
  const flips = hash(seed, SALT.cased, index);
  const out = [...text].map((ch, k) => ((flips >>> (k % 32)) & 1 ? ch.toUpperCase() : ch.toLowerCase())).join('');
  return out === text ? text.toUpperCase() : out;
}

export interface GeneratedUser {
  index: number;
  id: string;
  name: string;
  username: string;
  email: string;
  /** This user reuses an earlier user's email or username: loading must refuse it. */
  collides: 'email' | 'username' | undefined;
}

export interface Dataset {
  seed: number;
  size: DatasetSize;
  user(index: number): GeneratedUser;
  /** The index of a user that loads (does not collide), near `index`. */
  loadedUser(index: number): number;
  group(index: number): { index: number; id: string; name: string };
  /** Membership number `index`: a (group, user) pair; big groups are likelier. */
  membership(index: number): { groupIndex: number; userIndex: number };
}

export function dataset(seed: number, size: DatasetSize): Dataset {
  const base = (index: number) => {
    const first = pick(FIRST, seed, SALT.first, index);
    const last = pick(LAST, seed, SALT.last, index);
    const username =
      `${first}.${last}`
        .normalize('NFD')
        .replace(/[^A-Za-z.]/g, '')
        .toLowerCase() + index.toString(36);
    return { name: `${first} ${last}`, username, email: `${username}@${pick(DOMAINS, seed, SALT.domain, index)}` };
  };
  const collision = (index: number): 'email' | 'username' | undefined => {
    if (index === 0) return undefined;
    if (unit(seed, SALT.emailCollision, index) < 0.01) return 'email';
    if (unit(seed, SALT.usernameCollision, index) < 0.005) return 'username';
    return undefined;
  };
  const user = (index: number): GeneratedUser => {
    const own = base(index);
    const collides = collision(index);
    const id = uuidOf(seed, SALT.id, index);
    if (!collides) return { index, id, ...own, collides };
    // The earlier user it clashes with is one that loads, so the clash is real.
    const source = base(loadedUser(hash(seed, SALT.source, index) % index));
    return collides === 'email'
      ? { index, id, ...own, email: recase(source.email, seed, index), collides }
      : { index, id, ...own, username: recase(source.username, seed, index), collides };
  };
  const loadedUser = (index: number): number => {
    let i = index;
    while (i > 0 && collision(i)) i -= 1;
    return i;
  };
  return {
    seed,
    size,
    user,
    loadedUser,
    group: (index) => ({
      index,
      id: uuidOf(seed, SALT.group, index),
      name: `${pick(ADJECTIVES, seed, SALT.groupName, index)} ${pick(NOUNS, seed, SALT.groupName + 100, index)} ${index}`,
    }),
    membership: (index) => {
      // Squaring a uniform number skews towards low group indexes: a few big groups, a long tail.
      const r = unit(seed, SALT.memberGroup, index);
      return {
        groupIndex: Math.min(size.groups - 1, Math.floor(r * r * size.groups)),
        userIndex: loadedUser(hash(seed, SALT.memberUser, index) % size.users),
      };
    },
  };
}
