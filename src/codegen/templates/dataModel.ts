/**
 * `_generated/dataModel.ts`: the app's data model, `Doc` and `Id`, read from `typeof schema`, and
 * registered with `@avvos/convoy` so that its own `Doc` and `DataModel` know the app's tables.
 */
import { HEADER } from './common.js';

export function dataModelTs(): string {
  return `${HEADER}
import type { DataModelFromSchema, Id as GenericId } from '@avvos/convoy';
import type { schema } from '../schema.js';

export type DataModel = DataModelFromSchema<typeof schema>;
export type TableNames = keyof DataModel & string;
/** A document of \`Table\` as handlers and clients see it, with \`_id\` and \`_creationTime\`. */
export type Doc<Table extends TableNames> = DataModel[Table]['document'];
/** The id of a document of \`Table\`: a UUID string branded with its table. */
export type Id<Table extends TableNames> = GenericId<Table>;

// \`Doc<'users'>\` and \`DataModel\` imported from '@avvos/convoy' know this app's tables too. (Inside
// the block, \`DataModel\` would name the package's own.)
type AppDataModel = DataModel;
declare module '@avvos/convoy' {
  interface Register {
    dataModel: AppDataModel;
  }
}
`;
}
