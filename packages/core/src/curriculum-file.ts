/** Reading a curriculum from a YAML or JSON file, with errors that name the file and field. */
import fs from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { UserError } from '@miniglm/data';
import { parseCurriculum, type Curriculum } from './curriculum.ts';

/** A curriculum that cannot run: a bad file or field, or a stage folder that belongs to another setup. */
export class CurriculumError extends UserError {}

export async function loadCurriculumFile(file: string): Promise<Curriculum> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new CurriculumError(
      code === 'ENOENT' ? `curriculum file not found: ${file}` : `cannot read ${file}: ${code}`,
    );
  }
  let data: unknown;
  try {
    // YAML is a superset of JSON, so one parser reads both.
    data = parseYaml(text);
  } catch (error) {
    throw new CurriculumError(`${file}: not valid YAML/JSON: ${(error as Error).message.split('\n')[0]}`);
  }
  const parsed = parseCurriculum(data);
  if (!parsed.ok) throw new CurriculumError(`${file}: ${parsed.error}`);
  return parsed.value;
}
