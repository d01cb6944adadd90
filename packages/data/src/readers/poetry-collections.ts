/**
 * The corpora bundled through the chinese-poetry npm package: which JSON files make up each
 * named collection, in a fixed order (so "limit 100" always means the same 100 poems).
 * Kept apart from the reader so that source parsing can list the names without touching disk.
 */
export interface PoetryCollection {
  name: string;
  /** What it is, for listings. */
  description: string;
  /** Folder under chinese-poetry/dist. */
  dir: string;
  /** Which file names in that folder belong to the collection. */
  match: RegExp;
  /** Records in these files carry no author; this is theirs. */
  defaultAuthor?: string;
  /** Q&A can be generated (the records have titles and authors). */
  qa: boolean;
  /** The word for one work in questions: 诗 (poem), 词 (ci lyric), 曲 (qu song), 篇 (piece). */
  noun: string;
}

export const POETRY_COLLECTIONS: readonly PoetryCollection[] = [
  {
    name: 'tang',
    description: '全唐诗, Complete Tang Poems (traditional characters)',
    dir: 'quantangshi',
    match: /^poet\.tang\.\d+\.json$/,
    qa: true,
    noun: '诗',
  },
  {
    name: 'song',
    description: '全宋诗, Song dynasty poems (traditional characters)',
    dir: 'quantangshi',
    match: /^poet\.song\.\d+\.json$/,
    qa: true,
    noun: '诗',
  },
  {
    name: 'songci',
    description: '全宋词, Song ci lyrics',
    dir: 'songci',
    match: /^ci\.song\.\d+\.json$/,
    qa: true,
    noun: '词',
  },
  {
    name: 'tangshi300',
    description: '唐诗三百首, Three Hundred Tang Poems',
    dir: 'quantangshi',
    match: /^唐诗三百首\.json$/,
    qa: true,
    noun: '诗',
  },
  {
    name: 'shuimotangshi',
    description: '水墨唐诗, Tang poems with commentary',
    dir: 'shuimotangshi',
    match: /\.json$/,
    qa: true,
    noun: '诗',
  },
  {
    name: 'huajianji',
    description: '花间集, Five Dynasties ci anthology',
    dir: 'wudaishici/huajianji',
    match: /\.json$/,
    qa: true,
    noun: '词',
  },
  {
    name: 'nantang',
    description: '南唐二主词, ci of the two Southern Tang rulers',
    dir: 'wudaishici/nantang',
    match: /^poetrys\.json$/,
    qa: true,
    noun: '词',
  },
  {
    name: 'caocao',
    description: '曹操诗集, poems of Cao Cao',
    dir: 'caocaoshiji',
    match: /\.json$/,
    defaultAuthor: '曹操',
    qa: true,
    noun: '诗',
  },
  {
    name: 'nalan',
    description: '纳兰性德诗集, poems of Nalan Xingde',
    dir: 'nalanxingde',
    match: /\.json$/,
    qa: true,
    noun: '词',
  },
  { name: 'chuci', description: '楚辞, Songs of Chu', dir: 'chuci', match: /\.json$/, qa: true, noun: '篇' },
  { name: 'yuanqu', description: '元曲, Yuan dynasty qu', dir: 'yuanqu', match: /\.json$/, qa: true, noun: '曲' },
  { name: 'shijing', description: '诗经, Book of Songs', dir: 'shijing', match: /\.json$/, qa: false, noun: '诗' },
  { name: 'lunyu', description: '论语, the Analects', dir: 'lunyu', match: /\.json$/, qa: false, noun: '篇' },
  {
    name: 'mengxue',
    description: '蒙学, classical primers (三字经, 千字文, 千家诗, ...)',
    dir: 'mengxue',
    match: /\.json$/,
    qa: false,
    noun: '篇',
  },
  {
    name: 'sishuwujing',
    description: '四书 (大学, 中庸, 孟子)',
    dir: 'sishuwujing',
    match: /\.json$/,
    qa: false,
    noun: '篇',
  },
  {
    name: 'youmengying',
    description: '幽梦影, aphorisms',
    dir: 'youmengying',
    match: /\.json$/,
    qa: false,
    noun: '篇',
  },
];

export const POETRY_COLLECTION_NAMES: readonly string[] = POETRY_COLLECTIONS.map((c) => c.name);
export const POETRY_QA_COLLECTION_NAMES: readonly string[] = POETRY_COLLECTIONS.filter((c) => c.qa).map((c) => c.name);

export function poetryCollection(name: string): PoetryCollection | undefined {
  return POETRY_COLLECTIONS.find((c) => c.name === name);
}
